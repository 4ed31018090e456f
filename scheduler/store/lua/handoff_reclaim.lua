-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Take the whole hand-off list back (its tasks are still pending). Returns the
-- ids that were still waiting; the others were already bound to a worker.
-- KEYS: hand-off list, leader.  ARGV: lease token ('' to skip the lease check).
local handoff, leader = KEYS[1], KEYS[2]
local token = ARGV[1]
if token ~= '' and redis.call('GET', leader) ~= token then
  return redis.error_reply('NOTLEADER this dispatcher no longer holds the lease')
end
local entries = redis.call('LRANGE', handoff, 0, -1)
redis.call('DEL', handoff)
local ids = {}
for i, entry in ipairs(entries) do
  ids[i] = string.sub(entry, 1, string.find(entry, '\t', 1, true) - 1)
end
return ids
