-- Recover dispatches that never started: a task claimed for a worker whose
-- message never reached it (the dispatcher died between claim and publish, or
-- a publish was lost with a Redis restart) would hold that worker's slot and
-- stay 'dispatched' for ever. Past the timeout such a task returns to pending
-- (attempt kept; the next claim increments it), so if its message does arrive
-- after all, start.lua finds another attempt and skips it: the body cannot run
-- twice. A slot still held by a task that ended without starting (cancelled
-- while dispatched) is freed the same way.
-- Either way a task of a concurrency key leaves the key's count.
-- KEYS: pending, pending_by_priority, inbox, stats, then one worker tasks key per worker.
-- ARGV: timeout in seconds, task key prefix, concurrency set prefix, then one
--       worker name per worker.
-- Returns the ids returned to pending.
-- @include _pending_wire
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local timeout = tonumber(ARGV[1])
local out = {}
for i = 5, #KEYS do
  local worker = ARGV[i - 1]
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    local tkey = ARGV[2] .. id
    local f = redis.call('HMGET', tkey, 'state', 'worker', 'dispatched_at', 'name', 'priority',
                         'seq', 'submitted_at', 'deadline', 'expected_duration',
                         'affinity_key', 'duration_key', 'concurrency_key', 'max_concurrent')
    local since = tonumber(f[3] or '0') or 0
    if now - since > timeout then
      if f[1] == 'dispatched' and f[2] == worker then
        redis.call('SREM', KEYS[i], id)
        if f[12] then redis.call('SREM', ARGV[3] .. f[12], id) end
        redis.call('HSET', tkey, 'state', 'pending', 'worker', '')
        redis.call('HDEL', tkey, 'dispatched_at', 'started_at')
        redis.call('ZADD', KEYS[1], f[6], id)
        redis.call('HINCRBY', KEYS[2], f[5], 1)
        redis.call('RPUSH', KEYS[3], pending_wire(id, f[4], f[5], f[6], f[7], f[8], f[9], f[10],
                                                    f[11], f[12], f[13]))
        out[#out + 1] = id
      elseif f[1] ~= 'running' and f[1] ~= 'dispatched' or f[2] ~= worker then
        redis.call('SREM', KEYS[i], id)
        if f[12] and f[1] ~= 'running' and f[1] ~= 'dispatched' then
          redis.call('SREM', ARGV[3] .. f[12], id)
        end
        redis.call('RPUSH', KEYS[3], cjson.encode({free = worker}))
      end
    end
  end
end
if #out > 0 then redis.call('HINCRBY', KEYS[4], 'recovered_unstarted', #out) end
return out
