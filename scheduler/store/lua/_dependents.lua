-- Shared by the scripts that end a task (finish.lua, cancel.lua, end_pending.lua,
-- requeue.lua) and by submit_after.lua: the tasks waiting on a task
-- (docs/workflows.md). A waiting task's record holds 'depends_on' (JSON, in
-- depends_on order), 'waiting_on' (how many have not finished),
-- 'on_parent_failure' ('cancel', 'run' or 'run_only': an errback, released by
-- its parents' failure and cancelled by their success) and, with 'pass_results', each
-- parent's result as 'pr:<parent id>', noted when that parent ended (so a
-- parent's record may expire before the last one ends). A task's dependents
-- are the list <dependents prefix><id>, read and deleted when it ends.
-- @include _time
-- @include _event
-- @include _to_pending

-- The gauge of tasks in state 'waiting' ('<ns>:waiting', beside the stats hash
-- '<ns>:stats'): raised by submit_after.lua for each task stored waiting, lowered
-- where a waiting task leaves that state (released or cancelled, here and in
-- cancel.lua), so that `yardmaster status` counts them without a scan.
local function waiting_gauge(stats)
  return string.sub(stats, 1, #stats - #'stats') .. 'waiting'
end

-- A waiting task whose last parent finished: with pass_results '1' the parents'
-- results become its first argument (a JSON list in depends_on order; with
-- 'single', the first parent's result itself, as Celery's chain passes it; spliced
-- into the argument text so no number is re-encoded); then it is pending and
-- the dispatcher hears of it, as of any submission. 'releases' counts the
-- releases, which the chaos test checks is never more than one.
local function release_waiting(task_key, id, pending, by_priority, inbox)
  local f = redis.call('HMGET', task_key, 'pass_results', 'depends_on', 'args')
  if f[1] == 'id' then  -- Celery's errback: the (failed) parent's id comes first
    local rest = string.match(f[3] or '[]', '^%s*%[(.*)%]%s*$') or ''
    local first = cjson.encode(cjson.decode(f[2])[1])
    if string.find(rest, '%S') then first = first .. ',' .. rest end
    redis.call('HSET', task_key, 'args', '[' .. first .. ']')
  elseif f[1] == '1' or f[1] == 'single' then
    local parts = {}
    for i, parent in ipairs(cjson.decode(f[2])) do
      parts[i] = redis.call('HGET', task_key, 'pr:' .. parent) or 'null'
    end
    local rest = string.match(f[3] or '[]', '^%s*%[(.*)%]%s*$') or ''
    local first = '[' .. table.concat(parts, ',') .. ']'
    if f[1] == 'single' then first = parts[1] or 'null' end
    if string.find(rest, '%S') then first = first .. ',' .. rest end
    redis.call('HSET', task_key, 'args', '[' .. first .. ']')
  end
  redis.call('HSET', task_key, 'released_at', now_text())
  redis.call('HINCRBY', task_key, 'releases', 1)  -- 1 for ever: the tests check it
  to_pending(task_key, id, pending, by_priority, inbox)
end

-- Task `id` ended in `outcome` (with `result`, JSON, when it succeeded). Each
-- dependent still waiting counts it as done (it succeeded, or the dependent
-- runs on a parent's failure: its result is then null; a 'run_only' dependent
-- counts a parent that failed and only that) and is released when it was the
-- last; else the dependent is cancelled with a reason naming the parent, and
-- so on down the graph. `ctx` holds the keys and limits: deps
-- (the dependents prefix), tasks (the task prefix), pending, by_priority,
-- inbox, stats, events, maxlen, ttl.
local function settle_dependents(id, outcome, result, ctx)
  local stack = {{id, outcome, result}}
  while #stack > 0 do
    local top = table.remove(stack)
    local parent, ended, value = top[1], top[2], top[3]
    local wf = redis.call('HGET', ctx.tasks .. parent, 'workflow_key')
    if wf then redis.call('EXPIRE', wf, ctx.ttl) end
    local list = ctx.deps .. parent
    local children = redis.call('LRANGE', list, 0, -1)
    redis.call('DEL', list)
    for _, child in ipairs(children) do
      local key = ctx.tasks .. child
      local f = redis.call('HMGET', key, 'state', 'on_parent_failure', 'pass_results', 'name',
                           'priority', 'submitted_at')
      if f[1] == 'waiting' then
        local counts
        if f[2] == 'run_only' then counts = ended == 'failed'
        else counts = ended == 'succeeded' or f[2] == 'run' end
        if counts then
          if f[3] == '1' or f[3] == 'single' then
            redis.call('HSET', key, 'pr:' .. parent, ended == 'succeeded' and value or 'null')
          end
          if redis.call('HINCRBY', key, 'waiting_on', -1) <= 0 then
            release_waiting(key, child, ctx.pending, ctx.by_priority, ctx.inbox)
            redis.call('DECR', waiting_gauge(ctx.stats))
          end
        else
          local now = now_text()
          local why = 'its parent ' .. parent .. ' ' .. ended
          redis.call('HSET', key, 'state', 'cancelled', 'finished_at', now, 'error', why,
                     'reason', 'parent ' .. parent .. ' ' .. ended)
          redis.call('HINCRBY', ctx.stats, 'cancelled', 1)
          redis.call('DECR', waiting_gauge(ctx.stats))
          append_event(ctx.events, ctx.maxlen, child, f[4], 'cancelled', '', f[5], f[6],
            'finished_at', now)
          redis.call('EXPIRE', key, ctx.ttl)
          stack[#stack + 1] = {child, 'cancelled', nil}
        end
      end
    end
  end
end
