-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Extend a lock only while the caller still holds it (never re-take a lapsed one).
-- KEYS: lock key.  ARGV: owner token, ttl in milliseconds.  Returns 1 or 0.
local lock = KEYS[1]
local token, ttl_ms = ARGV[1], ARGV[2]
if redis.call('GET', lock) == token then
  redis.call('PEXPIRE', lock, ttl_ms)
  return 1
end
return 0
