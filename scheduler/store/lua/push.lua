-- Push prepared Celery messages onto worker queues, in order (the publisher's batch).
-- @flags allow-oom: it only moves state (docs/reliability.md, "Backpressure"): the
-- tasks were claimed already, and a message left unpushed would strand its task.
-- KEYS: one worker queue per message.
-- ARGV: one message per key.
-- Returns the number of messages pushed.
local n = #KEYS
for i = 1, n do
  redis.call('LPUSH', KEYS[i], ARGV[i])
end
return n
