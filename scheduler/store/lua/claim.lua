-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Claim a batch of (task, worker) decisions: pending -> dispatched, slot taken.
-- KEYS: pending, stats, pending_by_priority, leader, then per decision:
--       task key, worker key, worker tasks key.
-- ARGV: leader token ('' to skip the lease check), concurrency set prefix,
--       then per decision: task id, worker name.
-- Returns per decision: {id, 'ok', name, args, kwargs, attempt, options, claim time} or
-- {id, reason, detail}; reason 'limited' means the task's concurrency key is at its cap,
-- 'short' that the worker lacks a resource the task needs (placement): what a worker's
-- tasks hold is the sum of their records' 'resources', so it is rebuilt by any reader
-- and given back as soon as a task leaves the worker's slot set (finish, requeue, reap).
-- @include _time
local pending, stats, by_priority, leader = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, concurrency_prefix = ARGV[1], ARGV[2]
local KEYS_BEFORE, ARGV_BEFORE = 4, 2  -- then 3 keys and 2 arguments per decision

if token ~= '' and redis.call('GET', leader) ~= token then
  return redis.error_reply('NOTLEADER this dispatcher no longer holds the lease')
end
-- Whether the worker (its capacities, JSON) has the task's resources (JSON) free now.
local function has_free(task_key, id, worker_tasks, capacity, needs)
  local cap = capacity and cjson.decode(capacity) or {}
  local want = cjson.decode(needs)
  local prefix = string.sub(task_key, 1, #task_key - #id)
  local held = {}
  for _, other in ipairs(redis.call('SMEMBERS', worker_tasks)) do
    local r = redis.call('HGET', prefix .. other, 'resources')
    if r then
      for name, amount in pairs(cjson.decode(r)) do held[name] = (held[name] or 0) + amount end
    end
  end
  for name, amount in pairs(want) do
    if (held[name] or 0) + amount > (cap[name] or 0) + 1e-9 then return false end
  end
  return true
end

local now = now_text()
local out = {}
local claimed = 0
local n = (#ARGV - ARGV_BEFORE) / 2
for i = 0, n - 1 do
  local id, worker = ARGV[ARGV_BEFORE + 1 + i * 2], ARGV[ARGV_BEFORE + 2 + i * 2]
  local base = KEYS_BEFORE + i * 3
  local task_key, worker_key, worker_tasks = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
  local f = redis.call('HMGET', task_key, 'state', 'name', 'args', 'kwargs', 'attempt', 'priority',
                       'opts', 'concurrency_key', 'max_concurrent', 'resources')
  local ckey = f[8] and (concurrency_prefix .. f[8])
  local slots = tonumber(redis.call('HGET', worker_key, 'slots') or '0')
  if f[1] ~= 'pending' then
    out[#out + 1] = {id, 'gone', f[1] or 'missing'}
  elseif slots == 0 then
    out[#out + 1] = {id, 'noworker', worker}
  elseif redis.call('SCARD', worker_tasks) >= slots then
    out[#out + 1] = {id, 'full', worker}
  elseif ckey and redis.call('SCARD', ckey) >= tonumber(f[9]) then
    out[#out + 1] = {id, 'limited', f[8]}
  elseif f[10] and not has_free(task_key, id, worker_tasks,
                                redis.call('HGET', worker_key, 'resources'), f[10]) then
    out[#out + 1] = {id, 'short', worker}
  else
    local attempt = tonumber(f[5] or '0') + 1
    redis.call('ZREM', pending, id)
    redis.call('HINCRBY', by_priority, f[6], -1)
    redis.call('HSET', task_key, 'state', 'dispatched', 'worker', worker,
               'dispatched_at', now, 'attempt', attempt)
    redis.call('SADD', worker_tasks, id)
    if ckey then redis.call('SADD', ckey, id) end
    claimed = claimed + 1
    out[#out + 1] = {id, 'ok', f[2], f[3], f[4], attempt, f[7] or '', now}
  end
end
if claimed > 0 then redis.call('HINCRBY', stats, 'dispatched', claimed) end
return out
