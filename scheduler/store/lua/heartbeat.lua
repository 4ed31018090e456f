-- Refresh a worker's heartbeat. Returns 0 when the worker is no longer
-- registered (it was declared dead), so it can register again.
-- KEYS: worker.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'heartbeat', string.format('%d.%06d', t[1], t[2]))
return 1
