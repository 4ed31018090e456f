-- A worker is about to run a task body: dispatched -> running, only for the
-- worker and attempt it was dispatched to. Anything else is a stale or
-- repeated delivery, and the body must not run.
-- The delivery's nonce (one per prerun) is kept with the running state: the
-- same call sent again (a hook retrying after a lost connection) answers
-- 'run' again, while a second delivery of the same message (Celery's Redis
-- visibility timeout restoring a long task's message, celery/kombu#337)
-- carries another nonce and is skipped, so the body never runs twice.
-- KEYS: task key, stats.   ARGV: worker name, attempt, delivery nonce.
-- Returns {'run', duration key, affinity key} or {'skip', state}.
local f = redis.call('HMGET', KEYS[1], 'state', 'worker', 'attempt', 'name',
                     'duration_key', 'affinity_key', 'start_nonce')
if f[1] == 'dispatched' and f[2] == ARGV[1] and f[3] == ARGV[2] then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'state', 'running',
             'started_at', string.format('%d.%06d', t[1], t[2]), 'start_nonce', ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'started', 1)
  return {'run', f[5] or f[4], f[6] or ''}
end
if f[1] == 'running' and f[2] == ARGV[1] and f[3] == ARGV[2] then
  if f[7] == ARGV[3] then return {'run', f[5] or f[4], f[6] or ''} end
  return {'skip', 'running (a second delivery of the running attempt)'}
end
return {'skip', f[1] or 'missing'}
