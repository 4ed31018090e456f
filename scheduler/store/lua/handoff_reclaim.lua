-- Take the whole hand-off list back (its tasks are still pending). Returns the
-- ids that were still waiting; the others were already bound to a worker.
-- KEYS: hand-off list.
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
local ids = {}
for i, entry in ipairs(entries) do
  ids[i] = string.sub(entry, 1, string.find(entry, '\t', 1, true) - 1)
end
return ids
