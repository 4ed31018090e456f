-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Execution guard of a run killed in its pool process (a hard time limit, a
-- terminate request): the main process frees the guard, so a later delivery
-- is not held back for the guard's TTL. Only the killed attempt's guard goes.
-- KEYS: guard lock.  ARGV: attempt.  Returns 1 when it was dropped, else 0.
local lock = KEYS[1]
local attempt = ARGV[1]
local holder = redis.call('GET', lock)
if holder and string.sub(holder, 1, #attempt + 1) == attempt .. ':' then
  return redis.call('DEL', lock)
end
return 0
