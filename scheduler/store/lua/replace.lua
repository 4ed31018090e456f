-- Celery's self.replace(sig) (docs/celery.md, "Canvas"): the running task `id`
-- hands whatever waits on it to its replacement `new` (already submitted), in
-- this one step: each waiting dependent names `new` instead of `id` in its
-- depends_on (same place, so a chord body's result order holds) and moves to
-- `new`'s dependents list; `id`'s record notes 'replaced_by' (the result backend
-- follows it, so AsyncResult(id) gets the replacement's result). A replacement
-- that already ended settles the moved dependents at once, as its end would have.
-- KEYS: task, its dependents list, the replacement's task, its dependents list,
--       pending, pending_by_priority, inbox, stats, events.
-- ARGV: id, replacement id, task prefix, dependents prefix, result ttl, events maxlen.
-- Returns {'ok', moved} or {'not_running', state} / {'missing', replacement id}.
-- @include _dependents
local task_key, deps_key, new_key, new_deps = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pending, by_priority, inbox, stats, events = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local id, new, task_prefix, deps_prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local result_ttl, events_maxlen = ARGV[5], ARGV[6]
local state = redis.call('HGET', task_key, 'state') or 'missing'
-- 'dispatched': the body may start before start.lua marks it (an early start)
if state ~= 'running' and state ~= 'dispatched' then return {'not_running', state} end
local new_state = redis.call('HGET', new_key, 'state')
if not new_state then return {'missing', new} end

local children = redis.call('LRANGE', deps_key, 0, -1)
redis.call('DEL', deps_key)
local moved = 0
for _, child in ipairs(children) do
  local key = task_prefix .. child
  local f = redis.call('HMGET', key, 'state', 'depends_on')
  if f[1] == 'waiting' then
    local parents = cjson.decode(f[2])
    for i, parent in ipairs(parents) do
      if parent == id then parents[i] = new end
    end
    redis.call('HSET', key, 'depends_on', cjson.encode(parents))
    redis.call('RPUSH', new_deps, child)
    moved = moved + 1
  end
end
redis.call('HSET', task_key, 'replaced_by', new)

if new_state == 'succeeded' or new_state == 'failed' or new_state == 'cancelled'
   or new_state == 'expired' then
  local result = redis.call('HGET', new_key, 'result') or 'null'
  settle_dependents(new, new_state, result, {deps = deps_prefix, tasks = task_prefix,
    pending = pending, by_priority = by_priority, inbox = inbox, stats = stats, events = events,
    maxlen = events_maxlen, ttl = result_ttl})
end
return {'ok', moved}
