-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Recover dispatches that never started: a task claimed for a worker whose
-- message never reached it (the dispatcher died between claim and publish, or
-- a publish was lost with a Redis restart) would hold that worker's slot and
-- stay 'dispatched' for ever. Past the timeout such a task returns to pending
-- (attempt kept; the next claim increments it), so if its message does arrive
-- after all, start.lua finds another attempt and skips it: the body cannot run
-- twice. A slot still held by a task that ended without starting (cancelled
-- while dispatched) is freed the same way.
-- Either way a task of a concurrency key leaves the key's count.
-- KEYS: pending, pending_by_priority, inbox, stats, then one worker tasks key per worker.
-- ARGV: timeout in seconds, task key prefix, concurrency set prefix, then one
--       worker name per worker.
-- Returns the ids returned to pending.
-- @include _time
-- @include _to_pending
local pending, by_priority, inbox, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local FIRST_WORKER_KEY = 5  -- worker i's tasks key is KEYS[4 + i], its name ARGV[3 + i]
local timeout, task_prefix, concurrency_prefix = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local now = tonumber(now_text())
local out = {}
for i = FIRST_WORKER_KEY, #KEYS do
  local worker_tasks, worker = KEYS[i], ARGV[i - 1]
  for _, id in ipairs(redis.call('SMEMBERS', worker_tasks)) do
    local task_key = task_prefix .. id
    local f = redis.call('HMGET', task_key, 'state', 'worker', 'dispatched_at', 'concurrency_key')
    local state, holder, ckey = f[1], f[2], f[4]
    local since = tonumber(f[3] or '0') or 0
    if now - since > timeout then
      if state == 'dispatched' and holder == worker then
        redis.call('SREM', worker_tasks, id)
        if ckey then redis.call('SREM', concurrency_prefix .. ckey, id) end
        to_pending(task_key, id, pending, by_priority, inbox)
        out[#out + 1] = id
      elseif state ~= 'running' and state ~= 'dispatched' or holder ~= worker then
        redis.call('SREM', worker_tasks, id)
        if ckey and state ~= 'running' and state ~= 'dispatched' then
          redis.call('SREM', concurrency_prefix .. ckey, id)
        end
        redis.call('RPUSH', inbox, cjson.encode({free = worker}))
      end
    end
  end
end
if #out > 0 then redis.call('HINCRBY', stats, 'recovered_unstarted', #out) end
return out
