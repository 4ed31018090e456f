-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Cancel a task that has not started. A pending task leaves the index. A
-- dispatched one is cancelled only while its message still waits in its
-- worker's queue: the message is marked so that the worker waits for its start
-- (which then refuses it) instead of starting the body early, and the worker
-- frees the slot without running it. A message the worker has already taken
-- may be starting its body this instant (an early start, see start.lua), so
-- the task is then treated as running: flagged, and the answer is 'running'.
-- A waiting task (unfinished parents) is cancelled at once, and its own dependents
-- with it unless they run on a parent's failure (_dependents.lua).
-- KEYS: task, pending, stats, pending_by_priority, events, inbox, delayed (retry backoff),
--       the task's dependents list.
-- ARGV: id, reason, result ttl, events maxlen, worker queue prefix.
-- Returns 'cancelled', 'running', 'missing' or 'already:<terminal state>'.
-- @include _time
-- @include _event
-- @include _hold_message
-- @include _dependents
local task_key, pending, stats, by_priority = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local events, inbox, delayed, deps_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local id, reason, result_ttl, events_maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local queue_prefix = ARGV[5]

local f = redis.call('HMGET', task_key, 'state', 'name', 'priority', 'submitted_at', 'worker',
                     'attempt')
local state, name, priority, submitted_at, worker, attempt = f[1], f[2], f[3], f[4], f[5], f[6]
if not state then return 'missing' end

-- The dispatched task's message, still in its worker's queue: held back.
local function hold_queued()
  local queue = queue_prefix .. (worker or '')
  local tag = '"delivery_tag":' .. cjson.encode(id .. '.' .. (attempt or ''))
  local msgs = redis.call('LRANGE', queue, 0, -1)
  for i, msg in ipairs(msgs) do
    if string.find(msg, tag, 1, true) then
      redis.call('LSET', queue, i - 1, hold_message(msg))
      return true
    end
  end
  return false
end

if state == 'dispatched' and not hold_queued() then state = 'running' end
if state == 'running' then
  redis.call('HSET', task_key, 'cancel_requested', '1')
  return 'running'
end
if state ~= 'pending' and state ~= 'dispatched' and state ~= 'waiting' then
  return 'already:' .. state
end
local now = now_text()
if state == 'pending' then
  redis.call('ZREM', pending, id)
  if delayed then redis.call('ZREM', delayed, id) end
  redis.call('HINCRBY', by_priority, priority, -1)
  redis.call('RPUSH', inbox, cjson.encode({cancel = id}))
end
redis.call('HSET', task_key, 'state', 'cancelled', 'finished_at', now, 'error', reason,
           'reason', 'cancelled')
redis.call('HINCRBY', stats, 'cancelled', 1)
if state == 'waiting' then redis.call('DECR', waiting_gauge(stats)) end
append_event(events, events_maxlen, id, name, 'cancelled', worker, priority, submitted_at,
  'finished_at', now)
if deps_key then
  local task_prefix = string.sub(task_key, 1, #task_key - #id)
  settle_dependents(id, 'cancelled', nil, {deps = string.sub(deps_key, 1, #deps_key - #id), tasks = task_prefix,
    pending = pending, by_priority = by_priority, inbox = inbox, stats = stats, events = events,
    maxlen = events_maxlen, ttl = result_ttl})
end
redis.call('EXPIRE', task_key, result_ttl)
return 'cancelled'
