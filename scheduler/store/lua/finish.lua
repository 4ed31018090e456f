-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- A worker is done with a delivery: record the outcome once, free the slot,
-- learn the duration and affinity (_learn.lua), publish the event. Then hand
-- the freed slot the next task of the hand-off list (the strategy's order,
-- prepared by the dispatcher; _hand_off.lua) in the same step, or wake the
-- dispatcher to fill it. These stay one script: a completion that freed its
-- slot but had not yet taken the next task would let the dispatcher fill the
-- slot twice.
-- An outcome 'retry' sends the task back to pending after a backoff instead
-- (_retry_later.lua): it waits in the delayed set until its not-before time,
-- when the dispatcher moves it to the pending index and it goes through the
-- strategy again.
-- KEYS: task, stats, worker, worker tasks, ema, ema counts, affinity, events,
--       inbox, hand-off list, pending, pending by priority, worker queue,
--       delayed, outcomes (per task name, for the circuit breakers), this task's
--       dependents list (its waiting children; _dependents.lua).
-- ARGV: id, worker, outcome (succeeded|failed|cancelled|expired|retry|skipped), result,
--       error, runtime, duration key, alpha, affinity step, affinity key,
--       result ttl, events maxlen, attempt, task key prefix, reason ('' = none),
--       retry delay in seconds, concurrency set prefix[, start nonce ('' = none),
--       affinity prefix[, retry args, retry kwargs]].
-- A held start (docs/reliability.md, "Held start") sends its finish with the
-- delivery's nonce: the outcome counts only if that start was the one
-- recorded (else it is handled as 'skipped'), and the duration and affinity
-- keys, which the worker has not read yet, come from the task's record.
-- A retried attempt's times stay in the record as 'attempt_<n>' (JSON), for the dashboard.
-- A retry may bring the next run's arguments (JSON text; '' keeps the record's), as
-- Celery's self.retry(args=..., kwargs=...): stored with the retry, in this step.
-- Returns 'ok', 'retry', 'released' (slot freed, state untouched; or, for a
-- delivery whose start was never recorded, the task back to pending) or 'stale'.
-- Only the current delivery (this worker, this attempt) holds the slot: the
-- report of an earlier attempt (a worker declared dead that still ran, a
-- message published late by a deposed dispatcher) or of a second delivery of
-- the running attempt changes nothing, so it cannot free a slot the current
-- attempt holds.
-- @include _time
-- @include _event
-- @include _to_pending
-- @include _hand_off
-- @include _learn
-- @include _retry_later
-- @include _dependents
local task_key, stats, worker_key, worker_tasks = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ema, ema_counts, affinity, events = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local inbox, handoff, pending, by_priority = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local queue, delayed, outcomes, deps_key = KEYS[13], KEYS[14], KEYS[15], KEYS[16]
local id, worker, outcome, result, error_text = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local runtime_text, duration_key, alpha, affinity_step = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local affinity_key, result_ttl, events_maxlen, attempt = ARGV[10], ARGV[11], ARGV[12], ARGV[13]
local task_prefix, reason, delay, concurrency_prefix = ARGV[14], ARGV[15], ARGV[16], ARGV[17]
local nonce, affinity_prefix, retry_args, retry_kwargs = ARGV[18], ARGV[19], ARGV[20], ARGV[21]
if nonce == '' then nonce = nil end

local f = redis.call('HMGET', task_key, 'state', 'worker', 'attempt', 'name', 'priority',
                     'submitted_at', 'dispatched_at', 'started_at', 'deadline', 'affinity_key',
                     'duration_key', 'cancel_requested', 'start_nonce', 'resources')
local state, holder, current, name, priority = f[1], f[2], f[3], f[4], f[5]
local submitted_at, dispatched_at, started_at, deadline = f[6], f[7], f[8], f[9]
local recorded_affinity, recorded_duration, cancel_requested, start_nonce = f[10], f[11], f[12], f[13]
if holder ~= worker or current ~= attempt then return 'stale' end
if nonce then  -- a held start's nonce (finish_call sends none when empty)
  if start_nonce ~= nonce then outcome = 'skipped' end
  if duration_key == '' then duration_key = recorded_duration or name or '' end
  if affinity_key == '' and recorded_affinity and recorded_affinity ~= '' then
    affinity_key = recorded_affinity
    affinity = affinity_prefix .. affinity_key
  end
end
if outcome == 'skipped' and state == 'running' then return 'stale' end
if redis.call('SREM', worker_tasks, id) == 0 then return 'stale' end
-- resources it held are free again (claim.lua sums the slot set): tell the dispatcher
if f[14] then redis.call('RPUSH', inbox, cjson.encode({held = worker})) end
-- A task of a concurrency key leaves the key's count with its slot (whatever
-- the outcome, retry and cancelled included), and the dispatcher is woken to
-- fill that key's freed place.
local ckey = redis.call('HGET', task_key, 'concurrency_key')
if ckey then
  redis.call('SREM', concurrency_prefix .. ckey, id)
  redis.call('RPUSH', inbox, cjson.encode({conc = ckey}))
end

-- The freed slot takes the head of the hand-off list, or else the dispatcher
-- hears of it (`freed`: the slot-freed inbox entry).
local function fill_slot(freed)
  if not hand_off(worker, worker_key, worker_tasks, handoff, inbox, task_prefix, pending,
                  by_priority, stats, queue) then
    redis.call('RPUSH', inbox, cjson.encode(freed))
  end
end

if outcome == 'skipped' and state == 'dispatched' then
  -- The start was never recorded (Redis unreachable), so the body did not run.
  to_pending(task_key, id, pending, by_priority, inbox)
end
if outcome == 'skipped' or (state ~= 'running' and state ~= 'dispatched') then
  fill_slot({free = worker})
  return 'released'
end
local now = now_text()
if outcome == 'retry' and cancel_requested == '1' then
  -- a cancel was asked for while it ran: it ends here instead of trying again
  outcome = 'cancelled'
  reason = 'cancelled'
end
if outcome ~= 'cancelled' and outcome ~= 'expired' and outcomes then  -- neither ran
  local failed = outcome ~= 'succeeded'
  redis.call('HINCRBY', outcomes, (name or '') .. (failed and '\tfail' or '\tok'), 1)
end
if outcome == 'retry' then
  -- the ended attempt's times, kept for the dashboard's timeline (retry_later resets them)
  redis.call('HSET', task_key, 'attempt_' .. (current or '0'), cjson.encode({
    dispatched_at = dispatched_at or '', started_at = started_at or '', ended_at = now,
    worker = worker, outcome = 'retry', error = string.sub(error_text or '', 1, 500)}))
  if retry_args and retry_args ~= '' then redis.call('HSET', task_key, 'args', retry_args) end
  if retry_kwargs and retry_kwargs ~= '' then
    redis.call('HSET', task_key, 'kwargs', retry_kwargs)
  end
  retry_later(task_key, id, now, delay, error_text, runtime_text, priority, delayed, by_priority,
              stats, inbox)
  fill_slot({free = worker})
  return 'retry'
end
local runtime = tonumber(runtime_text)
redis.call('HSET', task_key, 'state', outcome, 'finished_at', now, 'runtime', runtime_text)
if reason and reason ~= '' then redis.call('HSET', task_key, 'reason', reason) end
if outcome == 'succeeded' then
  redis.call('HSET', task_key, 'result', result)
else
  redis.call('HSET', task_key, 'error', error_text)
end
redis.call('HINCRBY', stats, outcome, 1)
redis.call('HINCRBY', worker_key, outcome, 1)
local freed = {free = worker}
local prior = ''  -- the EMA this run was predicted by, for the monitors
if outcome == 'succeeded' and runtime then
  prior = learn_duration(freed, ema, ema_counts, duration_key, runtime, tonumber(alpha))
end
if affinity_key ~= '' and outcome ~= 'cancelled' and outcome ~= 'expired' then
  learn_affinity(freed, affinity, worker, affinity_key, outcome == 'succeeded',
                 tonumber(affinity_step))
end
append_event(events, events_maxlen, id, name, outcome, worker, priority, submitted_at,
  'dispatched_at', dispatched_at or '', 'started_at', started_at or now, 'finished_at', now,
  'runtime', runtime_text, 'deadline', deadline or '', 'attempt', current or '',
  'expected', prior)
if deps_key then
  settle_dependents(id, outcome, result, {deps = string.sub(deps_key, 1, #deps_key - #id), tasks = task_prefix,
    pending = pending, by_priority = by_priority, inbox = inbox, stats = stats, events = events,
    maxlen = events_maxlen, ttl = result_ttl})
end
redis.call('EXPIRE', task_key, result_ttl)
fill_slot(freed)
return 'ok'
