-- Touch an affinity key in a worker's warm list (most recent first, capped).
-- KEYS: warm list.  ARGV: affinity key, capacity.  Returns 1 if it was warm.
local pos = redis.call('LPOS', KEYS[1], ARGV[1])
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if pos then return 1 end
return 0
