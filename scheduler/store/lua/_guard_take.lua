-- The execution guard's check-and-take (guard_enter.lua, and start.lua when a
-- start takes the guard in the same step): take the task's guard lock unless
-- the body already finished or another live delivery holds it. A finished
-- body answers every later delivery when it succeeded, and the same attempt's
-- deliveries when it failed (a new attempt after a failure may run again).
-- Returns nothing when the guard is now the caller's (for ttl_ms), else
-- 'done', the outcome JSON, or 'held', the holder's token.
local function take_guard(lock, done_marker, token, ttl_ms, attempt)
  local done = redis.call('GET', done_marker)
  if done then
    local d = cjson.decode(done)
    if d.o == 'succeeded' or tostring(d.a) == attempt then return 'done', done end
  end
  local holder = redis.call('GET', lock)
  if holder == false or holder == token then
    redis.call('SET', lock, token, 'PX', ttl_ms)
    return nil
  end
  return 'held', holder
end
