-- Execution guard, before a task body runs: take the task's guard lock unless
-- the body already finished (a redelivery) or another live delivery runs it.
-- A finished body answers every later delivery when it succeeded, and the
-- same attempt's deliveries when it failed (a new attempt after a failure may
-- run again).
-- KEYS: guard lock, done marker.  ARGV: owner token, ttl (ms), attempt.
-- Returns {'run'}, {'done', outcome JSON} or {'held', holder token}.
local done = redis.call('GET', KEYS[2])
if done then
  local d = cjson.decode(done)
  if d.o == 'succeeded' or tostring(d.a) == ARGV[3] then return {'done', done} end
end
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'run'}
end
return {'held', holder}
