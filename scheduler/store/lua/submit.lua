-- Accept a batch of tasks atomically: record, pending index, dispatcher inbox.
-- A task may first be answered without a new run (see docs/cache-and-locks.md):
-- by its idempotency key (the task submitted with it), by the solution cache
-- (a new record, succeeded at once with the cached result) or by coalescing
-- (the identical task still pending or running).
-- Admission control (_admission.lua; docs/reliability.md, "Backpressure"): when asked to
-- check (the first chunk of a batch; later chunks of an admitted batch are not checked
-- again), the batch is refused, writing no task, under backpressure.
-- KEYS: seq, pending, inbox, stats, pending_by_priority, cache stats, cache index,
--       delayed, memory flag, memory sample, then one task key per task.
-- ARGV: result ttl (s), idempotency window (s), task key prefix, check (1 or 0),
--       max pending (0: none), high water, low water (shares of maxmemory; 0: no check),
--       sample ms (how long a reading of INFO memory is reused; 0: read every time),
--       then 20 fields per task:
--       id, name, args, kwargs, priority, deadline, expected_duration, affinity_key,
--       duration_key, options (retry policy and time limits as JSON), concurrency_key,
--       max_concurrent, idempotency key, in-flight key, cache key, cache ttl (ms),
--       resources (JSON), labels (JSON), queue (the Celery queue its worker must
--       consume), prefer (JSON: labels a worker should carry)
--       ('' when absent; the idempotency, in-flight and cache keys are full Redis keys).
-- Returns, per task, its sequence number; 0 when the id already existed; or the
-- string 'idem:<id>', 'coalesced:<id>' (an existing task answers) or 'cached';
-- or, for a refused batch, {'backpressure', 'pending' or 'memory', current, limit}
-- (current and limit as text: tasks, or shares of maxmemory).
-- @include _time
-- @include _admission
local seq_key, pending, inbox, stats, by_priority = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local cache_stats, cache_index, delayed, memory_flag = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local memory_sample = KEYS[10]
local KEYS_BEFORE = 10  -- then one task key per task
local ttl, window, prefix = ARGV[1], ARGV[2], ARGV[3]
local check, max_pending = ARGV[4] == '1', tonumber(ARGV[5])
local high, low, sample_ms = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local ARGV_BEFORE, W = 8, 20  -- then W fields per task

if check then
  local refusal = admission_refusal(pending, delayed, memory_flag, memory_sample, max_pending,
                                    high, low, sample_ms)
  if refusal then return refusal end
end
local now = now_text()
local out = {}
local accepted = 0

local function live(id)
  local s = redis.call('HGET', prefix .. id, 'state')
  return s == 'pending' or s == 'dispatched' or s == 'running'
end

local n = (#ARGV - ARGV_BEFORE) / W
for i = 0, n - 1 do
  local b = ARGV_BEFORE + i * W
  local id, name, args, kwargs = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local priority, deadline, expected = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7]
  local affinity, dkey, opts = ARGV[b + 8], ARGV[b + 9], ARGV[b + 10]
  local ckey, maxc = ARGV[b + 11], ARGV[b + 12]
  local idem, inflight, cache, cache_ttl = ARGV[b + 13], ARGV[b + 14], ARGV[b + 15], ARGV[b + 16]
  local needs_res, needs_labels = ARGV[b + 17], ARGV[b + 18]
  local on_queue, prefer = ARGV[b + 19], ARGV[b + 20]
  local key = KEYS[KEYS_BEFORE + 1 + i]
  local answer = nil
  if idem ~= '' then
    local prior = redis.call('GET', idem)
    if prior and redis.call('EXISTS', prefix .. prior) == 1 then
      answer = 'idem:' .. prior
      redis.call('HINCRBY', cache_stats, 'idempotent', 1)
    end
  end
  if not answer and cache ~= '' then
    local hit = redis.call('HGET', cache, 'r')
    if hit then
      redis.call('HSET', key, 'name', name, 'args', args, 'kwargs', kwargs,
                 'priority', priority, 'state', 'succeeded', 'submitted_at', now,
                 'finished_at', now, 'attempt', 0, 'result', hit, 'cached', 1)
      redis.call('EXPIRE', key, ttl)
      redis.call('ZADD', cache_index, now, cache)
      redis.call('HINCRBY', cache_stats, 'hits', 1)
      redis.call('HINCRBY', cache_stats, 'hits:' .. name, 1)
      answer = 'cached'
    end
  end
  if not answer and inflight ~= '' then
    local prior = redis.call('GET', inflight)
    if prior and live(prior) then
      answer = 'coalesced:' .. prior
      redis.call('HINCRBY', cache_stats, 'coalesced', 1)
    end
  end
  if answer then
    if idem ~= '' and string.sub(answer, 1, 5) ~= 'idem:' then
      local target = id
      if answer ~= 'cached' then target = string.match(answer, ':(.*)$') end
      redis.call('SET', idem, target, 'EX', window)
    end
    out[#out + 1] = answer
  elseif redis.call('EXISTS', key) == 1 then
    out[#out + 1] = 0
  else
    local seq = redis.call('INCR', seq_key)
    local rec = {'name', name, 'args', args, 'kwargs', kwargs, 'priority', priority,
                 'state', 'pending', 'submitted_at', now, 'seq', seq, 'attempt', 0}
    local wire = {id = id, n = name, p = tonumber(priority), s = seq, t = now}
    if deadline ~= '' then rec[#rec + 1] = 'deadline'; rec[#rec + 1] = deadline; wire.d = deadline end
    if expected ~= '' then rec[#rec + 1] = 'expected_duration'; rec[#rec + 1] = expected; wire.e = expected end
    if affinity ~= '' then rec[#rec + 1] = 'affinity_key'; rec[#rec + 1] = affinity; wire.a = affinity end
    if dkey ~= '' then rec[#rec + 1] = 'duration_key'; rec[#rec + 1] = dkey; wire.k = dkey end
    if opts ~= '' then rec[#rec + 1] = 'opts'; rec[#rec + 1] = opts end
    if ckey ~= '' then
      rec[#rec + 1] = 'concurrency_key'; rec[#rec + 1] = ckey; wire.c = ckey
      rec[#rec + 1] = 'max_concurrent'; rec[#rec + 1] = maxc; wire.m = tonumber(maxc)
    end
    -- placement requirements: kept in the record (claim.lua sums what a worker's
    -- tasks hold) and carried in the wire form only when present
    if needs_res ~= '' then
      rec[#rec + 1] = 'resources'; rec[#rec + 1] = needs_res; wire.r = cjson.decode(needs_res)
    end
    if needs_labels ~= '' then
      rec[#rec + 1] = 'labels'; rec[#rec + 1] = needs_labels; wire.l = cjson.decode(needs_labels)
    end
    -- a queue or a preference comes with an 'l' (empty without labels), so that
    -- decoding a plain task looks for two keys only (PendingTask.from_wire)
    if on_queue ~= '' then
      rec[#rec + 1] = 'on_queue'; rec[#rec + 1] = on_queue; wire.q = on_queue; wire.l = wire.l or {}
    end
    if prefer ~= '' then
      rec[#rec + 1] = 'prefer'; rec[#rec + 1] = prefer; wire.f = cjson.decode(prefer)
      wire.l = wire.l or {}
    end
    if cache ~= '' then
      rec[#rec + 1] = 'cache_key'; rec[#rec + 1] = cache
      rec[#rec + 1] = 'cache_ttl'; rec[#rec + 1] = cache_ttl
      redis.call('HINCRBY', cache_stats, 'misses', 1)
      redis.call('HINCRBY', cache_stats, 'misses:' .. name, 1)
    end
    redis.call('HSET', key, unpack(rec))
    redis.call('ZADD', pending, seq, id)
    redis.call('HINCRBY', by_priority, priority, 1)
    redis.call('RPUSH', inbox, cjson.encode(wire))
    if inflight ~= '' then redis.call('SET', inflight, id, 'EX', ttl) end
    if idem ~= '' then redis.call('SET', idem, id, 'EX', window) end
    accepted = accepted + 1
    out[#out + 1] = seq
  end
end
if accepted > 0 then redis.call('HINCRBY', stats, 'submitted', accepted) end
return out
