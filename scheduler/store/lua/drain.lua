-- A worker is shutting down: it takes no new work. Its slot count drops to 0,
-- so neither a claim nor a hand-off gives it another task, and the dispatcher
-- is told (it re-reads the workers). Tasks it runs keep their slots until they finish.
-- KEYS: worker, inbox.  ARGV: name.  Returns 1, or 0 for an unknown worker.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'slots', 0, 'draining', 1)
redis.call('RPUSH', KEYS[2], cjson.encode({worker = ARGV[1]}))
return 1
