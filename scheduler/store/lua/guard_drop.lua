-- Execution guard of a run killed in its pool process (a hard time limit, a
-- terminate request): the main process frees the guard, so a later delivery
-- is not held back for the guard's TTL. Only the killed attempt's guard goes.
-- KEYS: guard lock.  ARGV: attempt.  Returns 1 when it was dropped, else 0.
local holder = redis.call('GET', KEYS[1])
if holder and string.sub(holder, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
  return redis.call('DEL', KEYS[1])
end
return 0
