-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- A worker is about to run a task body: dispatched -> running, only for the
-- worker and attempt it was dispatched to. Anything else is a stale or
-- repeated delivery, and the body must not run.
-- The delivery's nonce (one per prerun) is kept with the running state: the
-- same call sent again (a hook retrying after a lost connection) answers
-- 'run' again, while a second delivery of the same message (Celery's Redis
-- visibility timeout restoring a long task's message, celery/kombu#337)
-- carries another nonce and is skipped, so the body never runs twice.
-- With the execution guard's keys, a delivery that may run also takes the
-- guard in the same step (the check-and-take of _guard_take.lua), so the
-- prerun waits for one round trip: the guard's answer rides on the reply.
-- KEYS: task key, stats[, guard lock, done marker].
-- ARGV: worker name, attempt, delivery nonce[, guard owner token, guard ttl (ms)
--       [, seconds the start was held back: the start time recorded is that much earlier]].
-- Returns {'run', duration key, affinity key} (the guard, if asked for, taken),
-- {'run', duration key, affinity key, 'done', outcome JSON} (the body already
-- finished: report that), {'run', duration key, affinity key, 'held', holder}
-- (another live delivery holds the guard) or {'skip', state[, 'repeat']}.
-- @include _time
-- @include _guard_take
local task_key, stats, lock, done_marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local worker, attempt, nonce = ARGV[1], ARGV[2], ARGV[3]
local token, ttl_ms, held_for = ARGV[4], ARGV[5], ARGV[6]

local function guarded(duration_key, affinity_key)
  if not lock then return {'run', duration_key, affinity_key} end
  local answer, detail = take_guard(lock, done_marker, token, ttl_ms, attempt)
  if answer then return {'run', duration_key, affinity_key, answer, detail} end
  return {'run', duration_key, affinity_key}
end

local f = redis.call('HMGET', task_key, 'state', 'worker', 'attempt', 'name',
                     'duration_key', 'affinity_key', 'start_nonce')
if f[1] == 'dispatched' and f[2] == worker and f[3] == attempt then
  local at = now_text()
  if held_for then  -- a held start: the body began this many seconds ago
    at = string.format('%.6f', tonumber(at) - tonumber(held_for))
  end
  redis.call('HSET', task_key, 'state', 'running', 'started_at', at, 'start_nonce', nonce)
  redis.call('HINCRBY', stats, 'started', 1)
  return guarded(f[5] or f[4], f[6] or '')
end
if f[1] == 'running' and f[2] == worker and f[3] == attempt then
  if f[7] == nonce then return guarded(f[5] or f[4], f[6] or '') end
  return {'skip', 'running (a second delivery of the running attempt)'}
end
-- The same start sent again once its delivery had ended (a lost connection):
-- refused, and said to be a repeat.
if f[7] == nonce then return {'skip', f[1], 'repeat'} end
return {'skip', f[1] or 'missing'}
