-- Register (or re-register) a worker. Tasks a previous life of the same
-- worker left behind go back to pending first (see requeue.lua).
-- KEYS: workers, worker, task names, inbox.
-- ARGV: name, slots, queue, host, pid, then the task names it serves.
local t = redis.call('TIME')
local now = string.format('%d.%06d', t[1], t[2])
redis.call('HSET', KEYS[2], 'name', ARGV[1], 'slots', ARGV[2], 'queue', ARGV[3],
           'host', ARGV[4], 'pid', ARGV[5], 'heartbeat', now, 'started_at', now)
redis.call('SADD', KEYS[1], ARGV[1])
for i = 6, #ARGV do redis.call('SADD', KEYS[3], ARGV[i]) end
redis.call('RPUSH', KEYS[4], cjson.encode({worker = ARGV[1]}))
return now
