-- Take the whole hand-off list back (its tasks are still pending). Returns the
-- ids that were still waiting; the others were already bound to a worker.
-- KEYS: hand-off list, leader.  ARGV: lease token ('' to skip the lease check).
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER this dispatcher no longer holds the lease')
end
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
local ids = {}
for i, entry in ipairs(entries) do
  ids[i] = string.sub(entry, 1, string.find(entry, '\t', 1, true) - 1)
end
return ids
