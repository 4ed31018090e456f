-- End a pending task as expired (a strategy's policy gave up on it).
-- KEYS: task, pending, stats, pending_by_priority, events.
-- ARGV: id, reason, result ttl, events maxlen.
-- Returns 'expired', 'missing' or the state the task is in instead.
local f = redis.call('HMGET', KEYS[1], 'state', 'name', 'priority', 'submitted_at', 'deadline')
local state = f[1]
if not state then return 'missing' end
if state ~= 'pending' then return state end
local t = redis.call('TIME')
local now = string.format('%d.%06d', t[1], t[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[4], f[3], -1)
redis.call('HSET', KEYS[1], 'state', 'expired', 'finished_at', now, 'error', ARGV[2])
redis.call('HINCRBY', KEYS[3], 'expired', 1)
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*',
  'id', ARGV[1], 'name', f[2] or '', 'state', 'expired', 'worker', '',
  'priority', f[3] or '', 'submitted_at', f[4] or '', 'finished_at', now,
  'deadline', f[5] or '')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 'expired'
