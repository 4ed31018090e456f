-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Give a worker's unfinished tasks back to the pending index (the worker died,
-- restarted, shut down, or a publish failed), and optionally forget the worker.
-- A task whose body had started and whose type's orphan policy is 'fail' (it
-- must not run twice) ends as failed instead, with the reason.
-- Every message still waiting in the worker's queue is held back (a restarted
-- worker of the same name takes them only after a start that refuses them).
-- KEYS: worker tasks, pending, pending_by_priority, inbox, workers, worker, warm,
--       orphan policy, stats, events, worker queue, the dependents prefix (a task that
--       fails here settles its waiting dependents; _dependents.lua).
-- ARGV: 'forget' or 'keep', the task key prefix, result ttl, events maxlen,
--       the concurrency set prefix, then optional task ids (none = all).
-- A task of a concurrency key leaves the key's count either way. A requeued task
-- keeps the ended attempt's times as 'attempt_<n>' (JSON), for the dashboard.
-- Returns the number of tasks that left the worker (requeued or failed).
-- @include _time
-- @include _event
-- @include _to_pending
-- @include _hold_message
-- @include _dependents
local worker_tasks, pending, by_priority, inbox = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local workers, worker_key, warm, orphan_policy = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local stats, events, queue, deps_prefix = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local mode, task_prefix, result_ttl, events_maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local concurrency_prefix = ARGV[5]
local FIRST_ID = 6

local ids = {}
if #ARGV >= FIRST_ID then
  for i = FIRST_ID, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('SMEMBERS', worker_tasks)
end
local worker = redis.call('HGET', worker_key, 'name') or ''
local n = 0
for _, id in ipairs(ids) do
  if redis.call('SREM', worker_tasks, id) == 1 then
    local task_key = task_prefix .. id
    local f = redis.call('HMGET', task_key, 'state', 'name', 'priority', 'submitted_at',
                         'deadline', 'dispatched_at', 'started_at', 'attempt', 'concurrency_key')
    local state, name, priority, submitted_at, deadline = f[1], f[2], f[3], f[4], f[5]
    local dispatched_at, started_at, attempt, ckey = f[6], f[7], f[8], f[9]
    if ckey then redis.call('SREM', concurrency_prefix .. ckey, id) end
    if state == 'running' and redis.call('HGET', orphan_policy, name) == 'fail' then
      local now = now_text()
      local reason = 'the worker ' .. worker .. ' was lost while the task ran, and its type '
        .. 'must not run again (on_orphan=fail)'
      redis.call('HSET', task_key, 'state', 'failed', 'finished_at', now, 'error', reason)
      redis.call('HINCRBY', stats, 'failed', 1)
      append_event(events, events_maxlen, id, name, 'failed', worker, priority, submitted_at,
        'dispatched_at', dispatched_at or '', 'started_at', started_at or now,
        'finished_at', now, 'runtime', '', 'deadline', deadline or '', 'attempt', attempt or '')
      if deps_prefix then
        settle_dependents(id, 'failed', nil, {deps = deps_prefix, tasks = task_prefix,
          pending = pending, by_priority = by_priority, inbox = inbox, stats = stats,
          events = events, maxlen = events_maxlen, ttl = result_ttl})
      end
      redis.call('EXPIRE', task_key, result_ttl)
      n = n + 1
    elseif state == 'dispatched' or state == 'running' then
      redis.call('HSET', task_key, 'attempt_' .. (attempt or '0'), cjson.encode({
        dispatched_at = dispatched_at or '', started_at = started_at or '',
        ended_at = now_text(), worker = worker, outcome = 'requeued'}))
      to_pending(task_key, id, pending, by_priority, inbox)
      n = n + 1
    end
  end
end
if n > 0 then
  for i, msg in ipairs(redis.call('LRANGE', queue, 0, -1)) do
    local held = hold_message(msg)
    if held ~= msg then redis.call('LSET', queue, i - 1, held) end
  end
end
if mode == 'forget' then
  local name = redis.call('HGET', worker_key, 'name')
  redis.call('DEL', worker_key, warm)
  if name then
    redis.call('SREM', workers, name)
    redis.call('RPUSH', inbox, cjson.encode({worker = name}))
  end
end
return n
