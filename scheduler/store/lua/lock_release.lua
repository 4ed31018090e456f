-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Release a lock only if the caller holds it, so a holder whose lock lapsed
-- and was taken by another cannot delete the new holder's lock.
-- KEYS: lock key.  ARGV: owner token.  Returns 1 if released, else 0.
local lock = KEYS[1]
local token = ARGV[1]
if redis.call('GET', lock) == token then return redis.call('DEL', lock) end
return 0
