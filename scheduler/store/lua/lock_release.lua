-- Release a lock only if the caller holds it, so a holder whose lock lapsed
-- and was taken by another cannot delete the new holder's lock.
-- KEYS: lock key.  ARGV: owner token.  Returns 1 if released, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
