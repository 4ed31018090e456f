-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Touch an affinity key in a worker's warm list (most recent first, capped).
-- KEYS: warm list.  ARGV: affinity key, capacity.  Returns 1 if it was warm.
local warm = KEYS[1]
local affinity_key, capacity = ARGV[1], tonumber(ARGV[2])
local pos = redis.call('LPOS', warm, affinity_key)
redis.call('LREM', warm, 0, affinity_key)
redis.call('LPUSH', warm, affinity_key)
redis.call('LTRIM', warm, 0, capacity - 1)
if pos then return 1 end
return 0
