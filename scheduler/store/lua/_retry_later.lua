-- finish.lua's retry: the task goes back to pending, but waits in the delayed
-- set until its not-before time (`delay` seconds after `now`), when promote.lua
-- moves it to the pending index; the dispatcher hears when that is due.
local function retry_later(task_key, id, now, delay, error_text, runtime_text, priority,
                           delayed, by_priority, stats, inbox)
  local due = string.format('%.6f', tonumber(now) + tonumber(delay))
  redis.call('HSET', task_key, 'state', 'pending', 'worker', '', 'last_error', error_text,
             'not_before', due, 'runtime', runtime_text)
  redis.call('HDEL', task_key, 'dispatched_at', 'started_at')
  redis.call('ZADD', delayed, due, id)
  redis.call('HINCRBY', by_priority, priority, 1)
  redis.call('HINCRBY', stats, 'retried', 1)
  redis.call('RPUSH', inbox, cjson.encode({delayed = id, at = tonumber(due)}))
end
