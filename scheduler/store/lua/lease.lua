-- Take or renew a lease: succeed when the key is free or already ours.
-- KEYS: lease key.  ARGV: token, ttl in milliseconds.  Returns 1 or 0.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
