-- finish.lua's hand-off: bind the head of the hand-off list to the slot a
-- worker just freed, and push it to that worker's queue. Entries are
-- "<id>\t<flag><message template>"; flag '1' marks the low-water point, where
-- the dispatcher is woken to top the list up. An entry whose task is no
-- longer pending (cancelled meanwhile) is dropped and the next one taken.
-- Returns true when a task was handed over, false when the worker has no free
-- slot (draining) or the list is empty.
-- @include _time
local function hand_off(worker, worker_key, worker_tasks, handoff, inbox, task_prefix, pending,
                        by_priority, stats, queue)
  local slots = tonumber(redis.call('HGET', worker_key, 'slots') or '0')
  if slots == 0 or redis.call('SCARD', worker_tasks) >= slots then return false end
  while true do
    local entry = redis.call('LPOP', handoff)
    if not entry then return false end
    local tab = string.find(entry, '\t', 1, true)
    local id = string.sub(entry, 1, tab - 1)
    if string.sub(entry, tab + 1, tab + 1) == '1' then
      redis.call('RPUSH', inbox, cjson.encode({refill = worker}))
    end
    local task_key = task_prefix .. id
    local f = redis.call('HMGET', task_key, 'state', 'attempt', 'priority')
    if f[1] == 'pending' then
      local attempt = tonumber(f[2] or '0') + 1
      redis.call('ZREM', pending, id)
      redis.call('HINCRBY', by_priority, f[3], -1)
      local at = now_text()
      redis.call('HSET', task_key, 'state', 'dispatched', 'worker', worker,
                 'dispatched_at', at, 'attempt', attempt)
      redis.call('SADD', worker_tasks, id)
      redis.call('HINCRBY', stats, 'dispatched', 1)
      -- The template has five quoted placeholders (see broker_config/publisher.py).
      local fill = {
        ['"@@ym-attempt@@"'] = tostring(attempt),
        ['"@@ym-worker@@"'] = cjson.encode(worker),
        ['"@@ym-queue@@"'] = cjson.encode(queue),
        ['"@@ym-tag@@"'] = cjson.encode(id .. '.' .. attempt),
        ['"@@ym-at@@"'] = at,
      }
      local msg = string.gsub(string.sub(entry, tab + 2), '"@@ym%-%a+@@"', fill)
      redis.call('LPUSH', queue, msg)
      return true
    end
  end
end
