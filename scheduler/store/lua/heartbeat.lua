-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Refresh a worker's heartbeat. Returns 0 when the worker is no longer
-- registered (it was declared dead), so it can register again.
-- KEYS: worker.  ARGV: none.  Returns 1 or 0.
-- @include _time
local worker_key = KEYS[1]
if redis.call('EXISTS', worker_key) == 0 then return 0 end
redis.call('HSET', worker_key, 'heartbeat', now_text())
return 1
