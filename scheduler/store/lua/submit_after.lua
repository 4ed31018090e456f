-- Accept a batch of tasks with dependencies atomically (docs/workflows.md): all
-- of it or, on refusal, nothing. Items come in an order where a parent inside
-- the batch precedes its children (the client sorts them). A task whose
-- parents all succeeded already is pending at once; else it is stored
-- 'waiting' (outside the pending index) with the number of unfinished parents,
-- its id appended to each such parent's dependents list; _dependents.lua
-- releases it. Kept apart from submit.lua: no solution cache, coalescing or
-- idempotency key applies to a task that must wait (the client refuses them).
-- Admission control (_admission.lua) as in submit.lua, for the whole batch (one
-- call): under backpressure it is refused before any other check, writing nothing.
-- The backlog it counts is pending + delayed: the batch's waiting tasks do not
-- count while they wait (they cannot run yet) and count once released.
-- KEYS: seq, pending, inbox, stats, pending_by_priority, workflow set (its
--       name even when there is no workflow), delayed, memory flag, memory
--       sample, then one task key per task.
-- ARGV: task key prefix, dependents prefix, workflow id ('' = none), max pending
--       (0: none), high water, low water, sample ms (as for submit.lua), then 15
--       fields per task: id, name, args, kwargs, priority, deadline,
--       expected_duration, affinity_key, duration_key, options, concurrency_key,
--       max_concurrent, parents (JSON list), on_parent_failure ('cancel', 'run' or
--       'run_only'), pass_results ('1', 'single', 'id' or '0'), path (the task's
--       remaining path in the workflow, '' for none) and latest (its propagated
--       deadline, '' for none): kept on the record as 'path' and 'latest', read
--       by _to_pending.lua into the dispatcher's entry (docs/workflows.md).
-- Also: the gauge '<ns>:waiting' counts the tasks stored waiting (_dependents.lua),
-- and a workflow's id enters the index '<ns>:workflows' (score: first submission).
-- Returns {'ok', seq...}, {'backpressure', 'pending' or 'memory', current, limit}, or a refusal: {'exists', id}, {'missing', id, parent},
-- {'expired', id, parent} or {'ended', id, parent, state} (a parent failed or
-- was cancelled and the task would not run anyway).
-- @include _dependents
-- @include _admission
local seq_key, pending, inbox, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local by_priority, workflow = KEYS[5], KEYS[6]
local delayed, memory_flag, memory_sample = KEYS[7], KEYS[8], KEYS[9]
local KEYS_BEFORE = 9
local task_prefix, deps_prefix, workflow_id = ARGV[1], ARGV[2], ARGV[3]
local max_pending, high, low = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local sample_ms = tonumber(ARGV[7])
local ARGV_BEFORE, W = 7, 17
local n = (#ARGV - ARGV_BEFORE) / W

local refusal = admission_refusal(pending, delayed, memory_flag, memory_sample, max_pending,
                                  high, low, sample_ms)
if refusal then return refusal end

local batch = {}
for i = 0, n - 1 do batch[ARGV[ARGV_BEFORE + i * W + 1]] = true end

-- First every check, so that a refusal stores nothing.
for i = 0, n - 1 do
  local b = ARGV_BEFORE + i * W
  local id, parents, policy = ARGV[b + 1], cjson.decode(ARGV[b + 13]), ARGV[b + 14]
  if redis.call('EXISTS', KEYS[KEYS_BEFORE + 1 + i]) == 1 then return {'exists', id} end
  for _, parent in ipairs(parents) do
    if not batch[parent] then
      local state = redis.call('HGET', task_prefix .. parent, 'state')
      if not state then return {'missing', id, parent} end
      if state == 'expired' then return {'expired', id, parent} end
      if policy == 'run_only' then  -- an errback: its parent must fail still, or have failed
        if state == 'succeeded' or state == 'cancelled' then return {'ended', id, parent, state} end
      elseif (state == 'failed' or state == 'cancelled') and policy ~= 'run' then
        return {'ended', id, parent, state}
      end
    end
  end
end

local now = now_text()
local out = {'ok'}
for i = 0, n - 1 do
  local b = ARGV_BEFORE + i * W
  local id, name, args, kwargs = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local priority, deadline, expected = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7]
  local affinity, dkey, opts = ARGV[b + 8], ARGV[b + 9], ARGV[b + 10]
  local ckey, maxc, parents_text = ARGV[b + 11], ARGV[b + 12], ARGV[b + 13]
  local policy, pass = ARGV[b + 14], ARGV[b + 15]
  local path, latest = ARGV[b + 16], ARGV[b + 17]
  local key = KEYS[KEYS_BEFORE + 1 + i]
  local seq = redis.call('INCR', seq_key)
  local rec = {'name', name, 'args', args, 'kwargs', kwargs, 'priority', priority,
               'state', 'waiting', 'submitted_at', now, 'seq', seq, 'attempt', 0,
               'depends_on', parents_text, 'on_parent_failure', policy, 'pass_results', pass}
  if deadline ~= '' then rec[#rec + 1] = 'deadline'; rec[#rec + 1] = deadline end
  if expected ~= '' then rec[#rec + 1] = 'expected_duration'; rec[#rec + 1] = expected end
  if affinity ~= '' then rec[#rec + 1] = 'affinity_key'; rec[#rec + 1] = affinity end
  if dkey ~= '' then rec[#rec + 1] = 'duration_key'; rec[#rec + 1] = dkey end
  if path ~= '' then rec[#rec + 1] = 'path'; rec[#rec + 1] = path end
  if latest ~= '' then rec[#rec + 1] = 'latest'; rec[#rec + 1] = latest end
  if opts ~= '' then rec[#rec + 1] = 'opts'; rec[#rec + 1] = opts end
  if ckey ~= '' then
    rec[#rec + 1] = 'concurrency_key'; rec[#rec + 1] = ckey
    rec[#rec + 1] = 'max_concurrent'; rec[#rec + 1] = maxc
  end
  if workflow_id ~= '' then
    rec[#rec + 1] = 'workflow'; rec[#rec + 1] = workflow_id
    rec[#rec + 1] = 'workflow_key'; rec[#rec + 1] = workflow
    redis.call('SADD', workflow, id)
  end
  redis.call('HSET', key, unpack(rec))
  local unfinished = 0
  for _, parent in ipairs(cjson.decode(parents_text)) do
    local f = redis.call('HMGET', task_prefix .. parent, 'state', 'result')
    if f[1] == 'succeeded' or f[1] == 'failed' or f[1] == 'cancelled' then
      if pass == '1' or pass == 'single' then
        redis.call('HSET', key, 'pr:' .. parent, f[1] == 'succeeded' and (f[2] or 'null') or 'null')
      end
    else
      unfinished = unfinished + 1
      redis.call('RPUSH', deps_prefix .. parent, id)
    end
  end
  redis.call('HSET', key, 'waiting_on', unfinished)
  if unfinished == 0 then
    release_waiting(key, id, pending, by_priority, inbox)
  else
    redis.call('INCR', waiting_gauge(stats))
  end
  out[#out + 1] = seq
end
redis.call('HINCRBY', stats, 'submitted', n)
if workflow_id ~= '' then
  -- The index of workflows, by first submission ('<ns>:workflows', beside the stats
  -- hash): what `yardmaster status` and the dashboard list; an entry whose set has
  -- expired is dropped by its reader.
  redis.call('ZADD', string.sub(stats, 1, #stats - #'stats') .. 'workflows', 'NX', now, workflow_id)
end
return out
