-- Shared by the scripts that put a task back into pending (each includes this
-- file with an include line that scripts.py expands): the dispatcher's inbox
-- entry for the task, from the fields of its record the script has already read.
local function pending_wire(id, name, priority, seq, submitted_at, deadline,
                            expected, affinity, duration_key, ckey, cap)
  local wire = {id = id, n = name, p = tonumber(priority), s = tonumber(seq), t = submitted_at}
  if deadline then wire.d = deadline end
  if expected then wire.e = expected end
  if affinity then wire.a = affinity end
  if duration_key then wire.k = duration_key end
  if ckey then wire.c = ckey; wire.m = tonumber(cap) end
  return cjson.encode(wire)
end
