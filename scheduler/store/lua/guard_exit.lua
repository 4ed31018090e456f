-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
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
-- @include _time
local lock, done_marker, task_key, cache_index, cache_stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local FIRST_EFFECT_KEY = 6
local token, attempt, outcome, result, error_text = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local marker_ttl, cache_max, effects_json, nonce = ARGV[6], ARGV[7], ARGV[8], ARGV[9]

if nonce and redis.call('HGET', task_key, 'start_nonce') ~= nonce
    and redis.call('GET', lock) ~= token then
  return -1
end
-- decoded before any write, so a bad outbox writes nothing
local effects = outcome == 'succeeded' and effects_json and effects_json ~= ''
  and cjson.decode(effects_json)
local prior = redis.call('GET', done_marker)
local settled = prior and cjson.decode(prior).o == 'succeeded'
if not settled then
  redis.call('SET', done_marker, cjson.encode({o = outcome, a = tonumber(attempt), r = result,
                                              e = error_text}), 'EX', marker_ttl)
  if effects then
    -- included here, so an exit without effects does not build its functions
    -- @include _outbox
    local problem = outbox_commit(effects, FIRST_EFFECT_KEY)
    if problem and redis.call('EXISTS', task_key) == 1 then
      redis.call('HSET', task_key, 'effects_error', problem)
    end
  end
end
local mine = 0
if redis.call('GET', lock) == token then
  redis.call('DEL', lock)
  mine = 1
end
if outcome == 'succeeded' then
  local f = redis.call('HMGET', task_key, 'cache_key', 'cache_ttl', 'name')
  local entry, entry_ttl, name = f[1], f[2], f[3]
  if entry and entry_ttl then
    redis.call('HSET', entry, 'r', result, 'n', name or '')
    redis.call('PEXPIRE', entry, entry_ttl)
    redis.call('ZADD', cache_index, now_text(), entry)
    local over = redis.call('ZCARD', cache_index) - tonumber(cache_max)
    if over > 0 then
      local old = redis.call('ZPOPMIN', cache_index, over)
      for i = 1, #old, 2 do redis.call('DEL', old[i]) end
      redis.call('HINCRBY', cache_stats, 'evicted', over)
    end
  end
end
return mine
