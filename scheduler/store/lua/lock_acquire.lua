-- Take a lock, or extend it when the caller already holds it.
-- KEYS: lock key.  ARGV: owner token, ttl in milliseconds.
-- Returns 1 when the caller holds the lock for ttl from now, else 0.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
