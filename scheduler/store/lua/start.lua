-- A worker is about to run a task body: dispatched -> running, only for the
-- worker and attempt it was dispatched to. Anything else is a stale or
-- repeated delivery, and the body must not run.
-- Idempotent for the same worker and attempt, so a hook may retry it.
-- KEYS: task key, stats.   ARGV: worker name, attempt.
-- Returns {'run', duration key, affinity key} or {'skip', state}.
local f = redis.call('HMGET', KEYS[1], 'state', 'worker', 'attempt', 'name',
                     'duration_key', 'affinity_key')
if f[1] == 'dispatched' and f[2] == ARGV[1] and f[3] == ARGV[2] then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'state', 'running',
             'started_at', string.format('%d.%06d', t[1], t[2]))
  redis.call('HINCRBY', KEYS[2], 'started', 1)
  return {'run', f[5] or f[4], f[6] or ''}
end
if f[1] == 'running' and f[2] == ARGV[1] and f[3] == ARGV[2] then
  return {'run', f[5] or f[4], f[6] or ''}
end
return {'skip', f[1] or 'missing'}
