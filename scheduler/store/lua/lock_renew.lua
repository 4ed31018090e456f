-- Extend a lock only while the caller still holds it (never re-take a lapsed one).
-- KEYS: lock key.  ARGV: owner token, ttl in milliseconds.  Returns 1 or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
