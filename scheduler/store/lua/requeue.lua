-- Give a worker's unfinished tasks back to the pending index (the worker died,
-- restarted, shut down, or a publish failed), and optionally forget the worker.
-- A task whose body had started and whose type's orphan policy is 'fail' (it
-- must not run twice) ends as failed instead, with the reason.
-- Every message still waiting in the worker's queue is held back (a restarted
-- worker of the same name takes them only after a start that refuses them).
-- KEYS: worker tasks, pending, pending_by_priority, inbox, workers, worker, warm,
--       orphan policy, stats, events, worker queue.
-- A task of a concurrency key leaves the key's count either way. A requeued task
-- keeps the ended attempt's times as 'attempt_<n>' (JSON), for the dashboard.
-- ARGV: 'forget' or 'keep', the task key prefix, result ttl, events maxlen,
--       the concurrency set prefix, then optional task ids (none = all).
-- Returns the number of tasks that left the worker (requeued or failed).
-- @include _pending_wire
-- @include _hold_message
local ids = {}
if #ARGV > 5 then
  for i = 6, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('SMEMBERS', KEYS[1])
end
local worker = redis.call('HGET', KEYS[6], 'name') or ''
local n = 0
for _, id in ipairs(ids) do
  if redis.call('SREM', KEYS[1], id) == 1 then
    local tkey = ARGV[2] .. id
    local f = redis.call('HMGET', tkey, 'state', 'name', 'priority', 'seq', 'submitted_at',
                         'deadline', 'expected_duration', 'affinity_key', 'duration_key',
                         'dispatched_at', 'started_at', 'attempt', 'concurrency_key',
                         'max_concurrent')
    if f[13] then redis.call('SREM', ARGV[5] .. f[13], id) end
    if f[1] == 'running' and redis.call('HGET', KEYS[8], f[2]) == 'fail' then
      local t = redis.call('TIME')
      local now = string.format('%d.%06d', t[1], t[2])
      local reason = 'the worker ' .. worker .. ' was lost while the task ran, and its type '
        .. 'must not run again (on_orphan=fail)'
      redis.call('HSET', tkey, 'state', 'failed', 'finished_at', now, 'error', reason)
      redis.call('HINCRBY', KEYS[9], 'failed', 1)
      redis.call('XADD', KEYS[10], 'MAXLEN', '~', ARGV[4], '*',
        'id', id, 'name', f[2] or '', 'state', 'failed', 'worker', worker,
        'priority', f[3] or '', 'submitted_at', f[5] or '', 'dispatched_at', f[10] or '',
        'started_at', f[11] or now, 'finished_at', now, 'runtime', '',
        'deadline', f[6] or '', 'attempt', f[12] or '')
      redis.call('EXPIRE', tkey, ARGV[3])
      n = n + 1
    elseif f[1] == 'dispatched' or f[1] == 'running' then
      local t = redis.call('TIME')
      redis.call('HSET', tkey, 'attempt_' .. (f[12] or '0'), cjson.encode({
        dispatched_at = f[10] or '', started_at = f[11] or '',
        ended_at = string.format('%d.%06d', t[1], t[2]), worker = worker, outcome = 'requeued'}))
      redis.call('HSET', tkey, 'state', 'pending', 'worker', '')
      redis.call('HDEL', tkey, 'dispatched_at', 'started_at')
      redis.call('ZADD', KEYS[2], f[4], id)
      redis.call('HINCRBY', KEYS[3], f[3], 1)
      redis.call('RPUSH', KEYS[4], pending_wire(id, f[2], f[3], f[4], f[5], f[6], f[7], f[8],
                                                  f[9], f[13], f[14]))
      n = n + 1
    end
  end
end
if n > 0 then
  for i, msg in ipairs(redis.call('LRANGE', KEYS[11], 0, -1)) do
    local held = hold_message(msg)
    if held ~= msg then redis.call('LSET', KEYS[11], i - 1, held) end
  end
end
if ARGV[1] == 'forget' then
  local name = redis.call('HGET', KEYS[6], 'name')
  redis.call('DEL', KEYS[6], KEYS[7])
  if name then
    redis.call('SREM', KEYS[5], name)
    redis.call('RPUSH', KEYS[4], cjson.encode({worker = name}))
  end
end
return n
