-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Take a lock, or extend it when the caller already holds it.
-- KEYS: lock key.  ARGV: owner token, ttl in milliseconds.
-- Returns 1 when the caller holds the lock for ttl from now, else 0.
local lock = KEYS[1]
local token, ttl_ms = ARGV[1], ARGV[2]
local holder = redis.call('GET', lock)
if holder == false or holder == token then
  redis.call('SET', lock, token, 'PX', ttl_ms)
  return 1
end
return 0
