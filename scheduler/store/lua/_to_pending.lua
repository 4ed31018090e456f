-- Shared by the scripts that take a dispatched or running task back to pending
-- (finish.lua for a start never recorded, recover.lua, requeue.lua): the task
-- returns to the pending index with its attempt kept (the next claim
-- increments it), and the dispatcher's inbox hears of it with the entry
-- pending_wire makes from the record.
-- @include _pending_wire
local function to_pending(task_key, id, pending, by_priority, inbox)
  local r = redis.call('HMGET', task_key, 'name', 'priority', 'seq', 'submitted_at', 'deadline',
                       'expected_duration', 'affinity_key', 'duration_key', 'concurrency_key',
                       'max_concurrent', 'resources', 'labels', 'on_queue',
                       'prefer', 'path', 'latest')
  redis.call('HSET', task_key, 'state', 'pending', 'worker', '')
  redis.call('HDEL', task_key, 'dispatched_at', 'started_at')
  redis.call('ZADD', pending, r[3], id)
  redis.call('HINCRBY', by_priority, r[2], 1)
  redis.call('RPUSH', inbox, pending_wire(id, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                                          r[9], r[10], r[11], r[12], r[13], r[14], r[15],
                                          r[16]))
end
