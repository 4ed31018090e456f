-- A worker is about to run a task body: dispatched -> running, only for the
-- worker and attempt it was dispatched to. Anything else is a stale or
-- repeated delivery, and the body must not run.
-- The delivery's nonce (one per prerun) is kept with the running state: the
-- same call sent again (a hook retrying after a lost connection) answers
-- 'run' again, while a second delivery of the same message (Celery's Redis
-- visibility timeout restoring a long task's message, celery/kombu#337)
-- carries another nonce and is skipped, so the body never runs twice.
-- With the execution guard's keys, a delivery that may run also takes the
-- guard in the same step (the check-and-take of guard_enter.lua), so the
-- prerun waits for one round trip: the guard's answer rides on the reply.
-- KEYS: task key, stats[, guard lock, done marker].
-- ARGV: worker name, attempt, delivery nonce[, guard owner token, guard ttl (ms)
--       [, seconds the start was held back: the start time recorded is that much earlier]].
-- Returns {'run', duration key, affinity key} (the guard, if asked for, taken),
-- {'run', duration key, affinity key, 'done', outcome JSON} (the body already
-- finished: report that), {'run', duration key, affinity key, 'held', holder}
-- (another live delivery holds the guard) or {'skip', state[, 'repeat']}.
local function guarded(dkey, akey)
  if not KEYS[3] then return {'run', dkey, akey} end
  local done = redis.call('GET', KEYS[4])
  if done then
    local d = cjson.decode(done)
    if d.o == 'succeeded' or tostring(d.a) == ARGV[2] then
      return {'run', dkey, akey, 'done', done}
    end
  end
  local holder = redis.call('GET', KEYS[3])
  if holder == false or holder == ARGV[4] then
    redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
    return {'run', dkey, akey}
  end
  return {'run', dkey, akey, 'held', holder}
end

local f = redis.call('HMGET', KEYS[1], 'state', 'worker', 'attempt', 'name',
                     'duration_key', 'affinity_key', 'start_nonce')
if f[1] == 'dispatched' and f[2] == ARGV[1] and f[3] == ARGV[2] then
  local t = redis.call('TIME')
  local at = string.format('%d.%06d', t[1], t[2])
  if ARGV[6] then  -- a held start: the body began this many seconds ago
    at = string.format('%.6f', tonumber(at) - tonumber(ARGV[6]))
  end
  redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', at, 'start_nonce', ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'started', 1)
  return guarded(f[5] or f[4], f[6] or '')
end
if f[1] == 'running' and f[2] == ARGV[1] and f[3] == ARGV[2] then
  if f[7] == ARGV[3] then return guarded(f[5] or f[4], f[6] or '') end
  return {'skip', 'running (a second delivery of the running attempt)'}
end
-- The same start sent again once its delivery had ended (a lost connection):
-- refused, and said to be a repeat.
if f[7] == ARGV[3] then return {'skip', f[1], 'repeat'} end
return {'skip', f[1] or 'missing'}
