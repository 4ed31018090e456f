-- Shared by the scripts that take a dispatched task back from its worker
-- (cancel.lua, requeue.lua; each includes this file with an include line that
-- scripts.py expands): a message still in the worker's queue gets its dispatch
-- time ('ym_at' header) zeroed, so the worker that takes it waits for its
-- start, which refuses it, instead of starting the body early (see
-- docs/reliability.md, "Early start"). Returns the message, held back.
local function hold_message(msg)
  return (string.gsub(msg, '"ym_at":[-%d%.eE+]+', '"ym_at":0', 1))
end
