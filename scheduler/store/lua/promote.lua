-- Move retried tasks whose backoff has passed from the delayed set to the
-- pending index, and tell the dispatcher (inbox), which orders them again.
-- KEYS: delayed, pending, inbox.
-- ARGV: task key prefix, largest number to move.
-- Returns {moved, next not-before time or ''}.
-- @include _pending_wire
local t = redis.call('TIME')
local now = tonumber(string.format('%d.%06d', t[1], t[2]))
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local f = redis.call('HMGET', ARGV[1] .. id, 'state', 'name', 'priority', 'seq',
                       'submitted_at', 'deadline', 'expected_duration', 'affinity_key',
                       'duration_key', 'concurrency_key', 'max_concurrent')
  if f[1] == 'pending' then
    redis.call('ZADD', KEYS[2], f[4], id)
    redis.call('RPUSH', KEYS[3], pending_wire(id, f[2], f[3], f[4], f[5], f[6], f[7], f[8],
                                              f[9], f[10], f[11]))
    moved = moved + 1
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {moved, nxt[2] or ''}
