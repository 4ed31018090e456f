-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- End a pending task without running it, in a given terminal state: a strategy
-- gave up on it (expired: its deadline can no longer be met) or a circuit
-- breaker fails it fast (failed, reason 'breaker_open').
-- Its waiting dependents are settled as for any end (_dependents.lua).
-- KEYS: task, pending, stats, pending_by_priority, events, inbox, the task's dependents list.
-- ARGV: id, state, error text, reason ('' = none recorded), result ttl, events maxlen.
-- Returns the new state, 'missing' or the state the task is in instead.
-- @include _time
-- @include _event
-- @include _dependents
local task_key, pending, stats, by_priority, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local inbox, deps_key = KEYS[6], KEYS[7]
local id, new_state, error_text, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local result_ttl, events_maxlen = ARGV[5], ARGV[6]

local f = redis.call('HMGET', task_key, 'state', 'name', 'priority', 'submitted_at', 'deadline',
                     'attempt')
local state, name, priority, submitted_at, deadline, attempt = f[1], f[2], f[3], f[4], f[5], f[6]
if not state then return 'missing' end
if state ~= 'pending' then return state end
local now = now_text()
redis.call('ZREM', pending, id)
redis.call('HINCRBY', by_priority, priority, -1)
redis.call('HSET', task_key, 'state', new_state, 'finished_at', now, 'error', error_text)
if reason ~= '' then redis.call('HSET', task_key, 'reason', reason) end
redis.call('HINCRBY', stats, new_state, 1)
append_event(events, events_maxlen, id, name, new_state, '', priority, submitted_at,
  'finished_at', now, 'deadline', deadline or '', 'attempt', attempt or '')
if deps_key then
  local task_prefix = string.sub(task_key, 1, #task_key - #id)
  settle_dependents(id, new_state, nil, {deps = string.sub(deps_key, 1, #deps_key - #id), tasks = task_prefix,
    pending = pending, by_priority = by_priority, inbox = inbox, stats = stats, events = events,
    maxlen = events_maxlen, ttl = result_ttl})
end
redis.call('EXPIRE', task_key, result_ttl)
return new_state
