-- Give a worker's unfinished tasks back to the pending index (the worker died,
-- restarted, shut down, or a publish failed), and optionally forget the worker.
-- KEYS: worker tasks, pending, pending_by_priority, inbox, workers, worker, warm.
-- ARGV: 'forget' or 'keep', the task key prefix, the concurrency set prefix,
--       then optional task ids (none = all).
-- Returns the number of tasks requeued.
local ids = {}
if #ARGV > 3 then
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('SMEMBERS', KEYS[1])
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('SREM', KEYS[1], id) == 1 then
    local tkey = ARGV[2] .. id
    local f = redis.call('HMGET', tkey, 'state', 'name', 'priority', 'seq', 'submitted_at',
                         'deadline', 'expected_duration', 'affinity_key', 'duration_key',
                         'concurrency_key', 'max_concurrent')
    if f[10] then redis.call('SREM', ARGV[3] .. f[10], id) end
    if f[1] == 'dispatched' or f[1] == 'running' then
      redis.call('HSET', tkey, 'state', 'pending', 'worker', '')
      redis.call('HDEL', tkey, 'dispatched_at', 'started_at')
      redis.call('ZADD', KEYS[2], f[4], id)
      redis.call('HINCRBY', KEYS[3], f[3], 1)
      local wire = {id = id, n = f[2], p = tonumber(f[3]), s = tonumber(f[4]), t = f[5]}
      if f[6] then wire.d = f[6] end
      if f[7] then wire.e = f[7] end
      if f[8] then wire.a = f[8] end
      if f[9] then wire.k = f[9] end
      if f[10] then wire.c = f[10]; wire.m = tonumber(f[11]) end
      redis.call('RPUSH', KEYS[4], cjson.encode(wire))
      n = n + 1
    end
  end
end
if ARGV[1] == 'forget' then
  local name = redis.call('HGET', KEYS[6], 'name')
  redis.call('DEL', KEYS[6], KEYS[7])
  if name then
    redis.call('SREM', KEYS[5], name)
    redis.call('RPUSH', KEYS[4], cjson.encode({worker = name}))
  end
end
return n
