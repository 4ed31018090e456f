-- Shared by the scripts that put a task back into pending (_to_pending.lua,
-- promote.lua): the dispatcher's inbox entry for the task, from the fields of
-- its record the script has read.
-- needs_res, needs_labels, on_queue and prefer are the record's placement requirements
-- (JSON, the queue name, JSON; nil when absent). path and latest are a workflow
-- task's remaining path and propagated deadline (submit_after.lua; nil when
-- absent): the path goes as 'w', and the propagated deadline, always the sooner,
-- in place of the task's own as 'd' (what edf orders by, as in the simulator).
local function pending_wire(id, name, priority, seq, submitted_at, deadline, expected,
                            affinity, duration_key, ckey, cap, needs_res, needs_labels,
                            on_queue, prefer, path, latest)
  local wire = {id = id, n = name, p = tonumber(priority), s = tonumber(seq), t = submitted_at}
  if latest then wire.d = latest elseif deadline then wire.d = deadline end
  if path then wire.w = tonumber(path) end
  if expected then wire.e = expected end
  if affinity then wire.a = affinity end
  if duration_key then wire.k = duration_key end
  if ckey then wire.c = ckey; wire.m = tonumber(cap) end
  if needs_res then wire.r = cjson.decode(needs_res) end
  if needs_labels then wire.l = cjson.decode(needs_labels) end
  -- with an 'l' (empty without labels), as submit.lua writes it
  if on_queue then wire.q = on_queue; wire.l = wire.l or {} end
  if prefer then wire.f = cjson.decode(prefer); wire.l = wire.l or {} end
  return cjson.encode(wire)
end
