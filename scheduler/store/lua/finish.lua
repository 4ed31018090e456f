-- A worker is done with a delivery: record the outcome once, free the slot,
-- learn the duration and affinity, publish the event. Then hand the freed
-- slot the next task of the hand-off list (the strategy's order, prepared by
-- the dispatcher) in the same step, or wake the dispatcher to fill it.
-- An outcome 'retry' sends the task back to pending after a backoff instead:
-- it waits in the delayed set until its not-before time, when the dispatcher
-- moves it to the pending index and it goes through the strategy again.
-- KEYS: task, stats, worker, worker tasks, ema, ema counts, affinity, events,
--       inbox, hand-off list, pending, pending by priority, worker queue,
--       delayed, outcomes (per task name, for the circuit breakers).
-- ARGV: id, worker, outcome (succeeded|failed|cancelled|retry|skipped), result,
--       error, runtime, duration key, alpha, affinity step, affinity key,
--       result ttl, events maxlen, attempt, task key prefix, reason ('' = none),
--       retry delay in seconds, concurrency set prefix[, start nonce, affinity prefix].
-- A held start (docs/reliability.md, "Held start") sends its finish with the
-- delivery's nonce: the outcome counts only if that start was the one
-- recorded (else it is handled as 'skipped'), and the duration and affinity
-- keys, which the worker has not read yet, come from the task's record.
-- A retried attempt's times stay in the record as 'attempt_<n>' (JSON), for the dashboard.
-- Returns 'ok', 'retry', 'released' (slot freed, state untouched; or, for a
-- delivery whose start was never recorded, the task back to pending) or 'stale'.
-- Only the current delivery (this worker, this attempt) holds the slot: the
-- report of an earlier attempt (a worker declared dead that still ran, a
-- message published late by a deposed dispatcher) or of a second delivery of
-- the running attempt changes nothing, so it cannot free a slot the current
-- attempt holds.
-- @include _pending_wire
local id, worker, outcome = ARGV[1], ARGV[2], ARGV[3]
local f = redis.call('HMGET', KEYS[1], 'state', 'worker', 'attempt', 'name', 'priority',
                     'submitted_at', 'dispatched_at', 'started_at', 'deadline', 'seq',
                     'expected_duration', 'affinity_key', 'duration_key', 'cancel_requested',
                     'max_concurrent', 'start_nonce')
if f[2] ~= worker or f[3] ~= ARGV[13] then return 'stale' end
local dkey, akey, ahash = ARGV[7], ARGV[10], KEYS[7]
if ARGV[18] then  -- a held start's nonce (finish_call sends none when empty)
  if f[16] ~= ARGV[18] then outcome = 'skipped' end
  if dkey == '' then dkey = f[13] or f[4] or '' end
  if akey == '' and f[12] and f[12] ~= '' then
    akey = f[12]
    ahash = ARGV[19] .. akey
  end
end
if outcome == 'skipped' and f[1] == 'running' then return 'stale' end
if redis.call('SREM', KEYS[4], id) == 0 then return 'stale' end
-- A task of a concurrency key leaves the key's count with its slot (whatever
-- the outcome, retry and cancelled included), and the dispatcher is woken to
-- fill that key's freed place.
local ckey = redis.call('HGET', KEYS[1], 'concurrency_key')
if ckey then
  redis.call('SREM', ARGV[17] .. ckey, id)
  redis.call('RPUSH', KEYS[9], cjson.encode({conc = ckey}))
end

local function now_text()
  local t = redis.call('TIME')
  return string.format('%d.%06d', t[1], t[2])
end

-- Bind the head of the hand-off list to this worker's freed slot. Entries are
-- "<id>\t<flag><message template>"; flag '1' marks the low-water point, where
-- the dispatcher is woken to top the list up.
local function hand_off()
  local slots = tonumber(redis.call('HGET', KEYS[3], 'slots') or '0')
  if slots == 0 or redis.call('SCARD', KEYS[4]) >= slots then return false end
  while true do
    local entry = redis.call('LPOP', KEYS[10])
    if not entry then return false end
    local tab = string.find(entry, '\t', 1, true)
    local tid = string.sub(entry, 1, tab - 1)
    if string.sub(entry, tab + 1, tab + 1) == '1' then
      redis.call('RPUSH', KEYS[9], cjson.encode({refill = worker}))
    end
    local tkey = ARGV[14] .. tid
    local f = redis.call('HMGET', tkey, 'state', 'attempt', 'priority')
    if f[1] == 'pending' then
      local attempt = tonumber(f[2] or '0') + 1
      redis.call('ZREM', KEYS[11], tid)
      redis.call('HINCRBY', KEYS[12], f[3], -1)
      local at = now_text()
      redis.call('HSET', tkey, 'state', 'dispatched', 'worker', worker,
                 'dispatched_at', at, 'attempt', attempt)
      redis.call('SADD', KEYS[4], tid)
      redis.call('HINCRBY', KEYS[2], 'dispatched', 1)
      -- The template has five quoted placeholders (see broker_config/publisher.py).
      local fill = {
        ['"@@ym-attempt@@"'] = tostring(attempt),
        ['"@@ym-worker@@"'] = cjson.encode(worker),
        ['"@@ym-queue@@"'] = cjson.encode(KEYS[13]),
        ['"@@ym-tag@@"'] = cjson.encode(tid .. '.' .. attempt),
        ['"@@ym-at@@"'] = at,
      }
      local msg = string.gsub(string.sub(entry, tab + 2), '"@@ym%-%a+@@"', fill)
      redis.call('LPUSH', KEYS[13], msg)
      return true
    end
  end
end

if outcome == 'skipped' and f[1] == 'dispatched' then
  -- The start was never recorded (Redis unreachable), so the body did not run.
  redis.call('HSET', KEYS[1], 'state', 'pending', 'worker', '')
  redis.call('HDEL', KEYS[1], 'dispatched_at', 'started_at')
  redis.call('ZADD', KEYS[11], f[10], id)
  redis.call('HINCRBY', KEYS[12], f[5], 1)
  redis.call('RPUSH', KEYS[9], pending_wire(id, f[4], f[5], f[10], f[6], f[9], f[11], f[12],
                                              f[13], ckey, f[15]))
end
if outcome == 'skipped' or (f[1] ~= 'running' and f[1] ~= 'dispatched') then
  if not hand_off() then redis.call('RPUSH', KEYS[9], cjson.encode({free = worker})) end
  return 'released'
end
local now = now_text()
if outcome == 'retry' and f[14] == '1' then
  -- a cancel was asked for while it ran: it ends here instead of trying again
  outcome = 'cancelled'
  ARGV[15] = 'cancelled'
end
if outcome ~= 'cancelled' and KEYS[15] then
  local failed = outcome ~= 'succeeded'
  redis.call('HINCRBY', KEYS[15], (f[4] or '') .. (failed and '\tfail' or '\tok'), 1)
end
if outcome == 'retry' then
  local due = string.format('%.6f', tonumber(now) + tonumber(ARGV[16]))
  -- the ended attempt's times, kept for the dashboard's timeline (the fields below are reset)
  redis.call('HSET', KEYS[1], 'attempt_' .. (f[3] or '0'), cjson.encode({
    dispatched_at = f[7] or '', started_at = f[8] or '', ended_at = now, worker = worker,
    outcome = 'retry', error = string.sub(ARGV[5] or '', 1, 500)}))
  redis.call('HSET', KEYS[1], 'state', 'pending', 'worker', '', 'last_error', ARGV[5],
             'not_before', due, 'runtime', ARGV[6])
  redis.call('HDEL', KEYS[1], 'dispatched_at', 'started_at')
  redis.call('ZADD', KEYS[14], due, id)
  redis.call('HINCRBY', KEYS[12], f[5], 1)
  redis.call('HINCRBY', KEYS[2], 'retried', 1)
  redis.call('RPUSH', KEYS[9], cjson.encode({delayed = id, at = tonumber(due)}))
  if not hand_off() then redis.call('RPUSH', KEYS[9], cjson.encode({free = worker})) end
  return 'retry'
end
local runtime = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], 'state', outcome, 'finished_at', now, 'runtime', ARGV[6])
if ARGV[15] and ARGV[15] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[15]) end
if outcome == 'succeeded' then
  redis.call('HSET', KEYS[1], 'result', ARGV[4])
else
  redis.call('HSET', KEYS[1], 'error', ARGV[5])
end
redis.call('HINCRBY', KEYS[2], outcome, 1)
redis.call('HINCRBY', KEYS[3], outcome, 1)
-- The dispatcher keeps estimates in memory; the slot-freed message carries
-- what this finish taught (new EMA, new affinity score), so it learns at once.
local freed = {free = worker}
local prior = ''  -- the EMA this run was predicted by, for the monitors
if outcome == 'succeeded' and runtime then
  local alpha = tonumber(ARGV[8])
  local old = tonumber(redis.call('HGET', KEYS[5], dkey) or '')
  local new = runtime
  if old then
    new = alpha * runtime + (1 - alpha) * old
    prior = string.format('%.6f', old)
  end
  redis.call('HSET', KEYS[5], dkey, string.format('%.6f', new))
  redis.call('HINCRBY', KEYS[6], dkey, 1)
  freed.k = dkey
  freed.e = new
end
if akey ~= '' and outcome ~= 'cancelled' then
  local score = tonumber(redis.call('HGET', ahash, worker) or '0')
  local step = tonumber(ARGV[9])
  if outcome == 'succeeded' then score = score + step else score = score - step end
  score = math.max(0, math.min(1, score))
  redis.call('HSET', ahash, worker, string.format('%.4f', score))
  freed.a = akey
  freed.s = score
end
redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[12], '*',
  'id', id, 'name', f[4] or '', 'state', outcome, 'worker', worker,
  'priority', f[5] or '', 'submitted_at', f[6] or '', 'dispatched_at', f[7] or '',
  'started_at', f[8] or now, 'finished_at', now, 'runtime', ARGV[6],
  'deadline', f[9] or '', 'attempt', f[3] or '', 'expected', prior)
redis.call('EXPIRE', KEYS[1], ARGV[11])
if not hand_off() then redis.call('RPUSH', KEYS[9], cjson.encode(freed)) end
return 'ok'
