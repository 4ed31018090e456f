-- Accept a batch of tasks atomically: record, pending index, dispatcher inbox.
-- KEYS: seq, pending, inbox, stats, pending_by_priority, then one task key per task.
-- ARGV: 10 fields per task: id, name, args, kwargs, priority, deadline,
--       expected_duration, affinity_key, duration_key, options (retry policy and
--       time limits as JSON) ('' when absent).
-- Returns, per task, its sequence number, or 0 when the id already existed.
local t = redis.call('TIME')
local now = string.format('%d.%06d', t[1], t[2])
local out = {}
local accepted = 0
local n = #ARGV / 10
for i = 0, n - 1 do
  local b = i * 10
  local id, name, args, kwargs = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local priority, deadline, expected = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7]
  local affinity, dkey, opts = ARGV[b + 8], ARGV[b + 9], ARGV[b + 10]
  local key = KEYS[6 + i]
  if redis.call('EXISTS', key) == 1 then
    out[#out + 1] = 0
  else
    local seq = redis.call('INCR', KEYS[1])
    local rec = {'name', name, 'args', args, 'kwargs', kwargs, 'priority', priority,
                 'state', 'pending', 'submitted_at', now, 'seq', seq, 'attempt', 0}
    local wire = {id = id, n = name, p = tonumber(priority), s = seq, t = now}
    if deadline ~= '' then rec[#rec + 1] = 'deadline'; rec[#rec + 1] = deadline; wire.d = deadline end
    if expected ~= '' then rec[#rec + 1] = 'expected_duration'; rec[#rec + 1] = expected; wire.e = expected end
    if affinity ~= '' then rec[#rec + 1] = 'affinity_key'; rec[#rec + 1] = affinity; wire.a = affinity end
    if dkey ~= '' then rec[#rec + 1] = 'duration_key'; rec[#rec + 1] = dkey; wire.k = dkey end
    if opts ~= '' then rec[#rec + 1] = 'opts'; rec[#rec + 1] = opts end
    redis.call('HSET', key, unpack(rec))
    redis.call('ZADD', KEYS[2], seq, id)
    redis.call('HINCRBY', KEYS[5], priority, 1)
    redis.call('RPUSH', KEYS[3], cjson.encode(wire))
    accepted = accepted + 1
    out[#out + 1] = seq
  end
end
if accepted > 0 then redis.call('HINCRBY', KEYS[4], 'submitted', accepted) end
return out
