-- Execution guard, after a task body returned: record that it finished (with
-- its outcome, for redeliveries), release the guard lock if still ours, put a
-- successful result in the solution cache when the task asked for it, and
-- apply the effects the body recorded in its outbox (_outbox.lua).
-- A recorded success is final: a later exit (the same call sent again after a
-- lost connection, or a second run that raced past the guard) neither
-- overwrites it nor applies its effects, so they are applied once per task.
-- A failed run's effects are not applied (the worker does not send them).
-- KEYS: guard lock, done marker, task, cache index, cache stats[, one key per effect].
-- ARGV: owner token, attempt, outcome, result JSON, error, marker ttl (s),
--       cache max entries[, effects JSON ('' = none)[, start nonce]].
-- With a start nonce (a held start, sent before this call, maybe in the same
-- write), nothing is written unless that start was recorded: it is the task's
-- latest start, or it took the guard, which is still ours (a later attempt may
-- have started since, and waits for this outcome). Else -1.
-- Returns 1 when the lock was still ours, else 0. Effects that could not be
-- applied are named in the task's 'effects_error' field.
local outcome, result = ARGV[3], ARGV[4]
if ARGV[9] and redis.call('HGET', KEYS[3], 'start_nonce') ~= ARGV[9]
    and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
-- decoded before any write, so a bad outbox writes nothing
local effects = outcome == 'succeeded' and ARGV[8] and ARGV[8] ~= '' and cjson.decode(ARGV[8])
local prior = redis.call('GET', KEYS[2])
local settled = prior and cjson.decode(prior).o == 'succeeded'
if not settled then
  redis.call('SET', KEYS[2], cjson.encode({o = outcome, a = tonumber(ARGV[2]), r = result,
                                          e = ARGV[5]}), 'EX', ARGV[6])
  if effects then
    -- included here, so an exit without effects does not build its functions
    -- @include _outbox
    local problem = outbox_commit(effects, 6)
    if problem and redis.call('EXISTS', KEYS[3]) == 1 then
      redis.call('HSET', KEYS[3], 'effects_error', problem)
    end
  end
end
local mine = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  mine = 1
end
if outcome == 'succeeded' then
  local f = redis.call('HMGET', KEYS[3], 'cache_key', 'cache_ttl', 'name')
  if f[1] and f[2] then
    redis.call('HSET', f[1], 'r', result, 'n', f[3] or '')
    redis.call('PEXPIRE', f[1], f[2])
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[4], string.format('%d.%06d', t[1], t[2]), f[1])
    local over = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[7])
    if over > 0 then
      local old = redis.call('ZPOPMIN', KEYS[4], over)
      for i = 1, #old, 2 do redis.call('DEL', old[i]) end
      redis.call('HINCRBY', KEYS[5], 'evicted', over)
    end
  end
end
return mine
