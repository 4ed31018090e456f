-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Register (or re-register) a worker. Tasks a previous life of the same
-- worker left behind go back to pending first (see requeue.lua, which the
-- store runs before this).
-- KEYS: workers, worker, task names, inbox.
-- ARGV: name, slots, queue, host, pid, then the task names it serves.
-- Returns the registration time.
-- @include _time
local workers, worker_key, task_names, inbox = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name, slots, queue, host, pid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local FIRST_TASK_NAME = 6
local now = now_text()
redis.call('HSET', worker_key, 'name', name, 'slots', slots, 'queue', queue,
           'host', host, 'pid', pid, 'heartbeat', now, 'started_at', now)
redis.call('SADD', workers, name)
for i = FIRST_TASK_NAME, #ARGV do redis.call('SADD', task_names, ARGV[i]) end
redis.call('RPUSH', inbox, cjson.encode({worker = name}))
return now
