-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- A worker is shutting down: it takes no new work. Its slot count drops to 0,
-- so neither a claim nor a hand-off gives it another task, and the dispatcher
-- is told (it re-reads the workers). Tasks it runs keep their slots until they finish.
-- KEYS: worker, inbox.  ARGV: name.  Returns 1, or 0 for an unknown worker.
local worker_key, inbox = KEYS[1], KEYS[2]
local name = ARGV[1]
if redis.call('EXISTS', worker_key) == 0 then return 0 end
redis.call('HSET', worker_key, 'slots', 0, 'draining', 1)
redis.call('RPUSH', inbox, cjson.encode({worker = name}))
return 1
