-- Accept a batch of tasks that must not start before a given time (Celery's
-- countdown / eta): each is recorded as pending, but waits in the delayed set
-- (the retry backoff's timer) instead of the pending index; promote.lua moves
-- it to the pending index when it is due, and the dispatcher hears now when
-- that is. No worker holds it meanwhile, and cancel.lua takes it out of both.
-- (Idempotency keys, the solution cache and coalescing answer at once, so
-- the client refuses them together with a start time; this script has none.)
-- Admission control (_admission.lua) as in submit.lua: when asked to check (the
-- first chunk of a batch), the batch is refused, writing no task, under
-- backpressure; a delayed task counts in the backlog from its submission.
-- KEYS: seq, delayed, inbox, stats, pending_by_priority, pending, memory flag,
--       memory sample, then one task key per task.
-- ARGV: task key prefix, not-before time (UNIX seconds), check (1 or 0), max pending
--       (0: none), high water, low water, sample ms (as for submit.lua), then 16
--       fields per task: id, name, args, kwargs, priority, deadline,
--       expected_duration, affinity_key, duration_key, options (JSON),
--       concurrency_key, max_concurrent, then the placement requirements kept in the
--       record for promote.lua: resources (JSON), labels (JSON), queue, prefer (JSON)
--       ('' when absent).
-- Returns, per task, its sequence number; 0 when the id already existed; or, for a
-- refused batch, {'backpressure', 'pending' or 'memory', current, limit}.
-- @include _time
-- @include _admission
local seq_key, delayed, inbox, stats, by_priority = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local pending, memory_flag, memory_sample = KEYS[6], KEYS[7], KEYS[8]
local KEYS_BEFORE = 8  -- then one task key per task
local prefix, due = ARGV[1], string.format('%.6f', tonumber(ARGV[2]))
local check, max_pending = ARGV[3] == '1', tonumber(ARGV[4])
local high, low, sample_ms = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ARGV_BEFORE, W = 7, 16  -- then W fields per task

if check then
  local refusal = admission_refusal(pending, delayed, memory_flag, memory_sample, max_pending,
                                    high, low, sample_ms)
  if refusal then return refusal end
end
local now = now_text()
local out = {}
local accepted = 0

local n = (#ARGV - ARGV_BEFORE) / W
for i = 0, n - 1 do
  local b = ARGV_BEFORE + i * W
  local id, name, args, kwargs = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local priority, deadline, expected = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7]
  local affinity, dkey, opts = ARGV[b + 8], ARGV[b + 9], ARGV[b + 10]
  local ckey, maxc = ARGV[b + 11], ARGV[b + 12]
  local placed = {resources = ARGV[b + 13], labels = ARGV[b + 14], on_queue = ARGV[b + 15],
                  prefer = ARGV[b + 16]}
  local key = KEYS[KEYS_BEFORE + 1 + i]
  if redis.call('EXISTS', key) == 1 then
    out[#out + 1] = 0
  else
    local seq = redis.call('INCR', seq_key)
    local rec = {'name', name, 'args', args, 'kwargs', kwargs, 'priority', priority,
                 'state', 'pending', 'submitted_at', now, 'seq', seq, 'attempt', 0,
                 'not_before', due}
    if deadline ~= '' then rec[#rec + 1] = 'deadline'; rec[#rec + 1] = deadline end
    if expected ~= '' then rec[#rec + 1] = 'expected_duration'; rec[#rec + 1] = expected end
    if affinity ~= '' then rec[#rec + 1] = 'affinity_key'; rec[#rec + 1] = affinity end
    if dkey ~= '' then rec[#rec + 1] = 'duration_key'; rec[#rec + 1] = dkey end
    if opts ~= '' then rec[#rec + 1] = 'opts'; rec[#rec + 1] = opts end
    if ckey ~= '' then
      rec[#rec + 1] = 'concurrency_key'; rec[#rec + 1] = ckey
      rec[#rec + 1] = 'max_concurrent'; rec[#rec + 1] = maxc
    end
    for _, field in ipairs({'resources', 'labels', 'on_queue', 'prefer'}) do
      if placed[field] ~= '' then rec[#rec + 1] = field; rec[#rec + 1] = placed[field] end
    end
    redis.call('HSET', key, unpack(rec))
    redis.call('ZADD', delayed, due, id)
    redis.call('HINCRBY', by_priority, priority, 1)
    redis.call('RPUSH', inbox, cjson.encode({delayed = id, at = tonumber(due)}))
    accepted = accepted + 1
    out[#out + 1] = seq
  end
end
if accepted > 0 then redis.call('HINCRBY', stats, 'submitted', accepted) end
return out
