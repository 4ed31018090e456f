-- End a pending task without running it, in a given terminal state and with a
-- reason (a circuit breaker failing tasks fast).
-- KEYS: task, pending, stats, pending_by_priority, events.
-- ARGV: id, state, error text, reason, result ttl, events maxlen.
-- Returns the new state, 'missing' or the state the task is in instead.
local f = redis.call('HMGET', KEYS[1], 'state', 'name', 'priority', 'submitted_at', 'deadline',
                     'attempt')
local state = f[1]
if not state then return 'missing' end
if state ~= 'pending' then return state end
local t = redis.call('TIME')
local now = string.format('%d.%06d', t[1], t[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[4], f[3], -1)
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'finished_at', now, 'error', ARGV[3],
           'reason', ARGV[4])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*',
  'id', ARGV[1], 'name', f[2] or '', 'state', ARGV[2], 'worker', '',
  'priority', f[3] or '', 'submitted_at', f[4] or '', 'finished_at', now,
  'deadline', f[5] or '', 'attempt', f[6] or '')
redis.call('EXPIRE', KEYS[1], ARGV[5])
return ARGV[2]
