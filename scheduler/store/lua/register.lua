-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Register (or re-register) a worker. Tasks a previous life of the same
-- worker left behind go back to pending first (see requeue.lua, which the
-- store runs before this).
-- KEYS: workers, worker, task names, inbox.
-- ARGV: name, slots, queue, host, pid, resources (JSON, '' for none), labels
--       (JSON, '' for none), the Celery queues it consumes besides its own (a JSON
--       list, '' for none), then the task names it serves (also kept in the
--       worker's hash as a JSON list, for placement).
-- Returns the registration time.
-- @include _time
local workers, worker_key, task_names, inbox = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, slots, queue, host, pid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local resources, labels, queues = ARGV[6], ARGV[7], ARGV[8]
local FIRST_TASK_NAME = 9
local now = now_text()
redis.call('HSET', worker_key, 'name', name, 'slots', slots, 'queue', queue,
           'host', host, 'pid', pid, 'heartbeat', now, 'started_at', now)
redis.call('SADD', workers, name)
local served = {}
for i = FIRST_TASK_NAME, #ARGV do
  redis.call('SADD', task_names, ARGV[i])
  served[#served + 1] = ARGV[i]
end
-- cjson encodes an empty table as {}: a worker serving nothing stores '[]'
redis.call('HSET', worker_key, 'task_names', #served > 0 and cjson.encode(served) or '[]')
if resources ~= '' then redis.call('HSET', worker_key, 'resources', resources)
else redis.call('HDEL', worker_key, 'resources') end
if labels ~= '' then redis.call('HSET', worker_key, 'labels', labels)
else redis.call('HDEL', worker_key, 'labels') end
if queues ~= '' then redis.call('HSET', worker_key, 'queues', queues)
else redis.call('HDEL', worker_key, 'queues') end
redis.call('RPUSH', inbox, cjson.encode({worker = name}))
return now
