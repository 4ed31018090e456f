-- Claim a batch of (task, worker) decisions: pending -> dispatched, slot taken.
-- KEYS: pending, stats, pending_by_priority, leader, then per decision:
--       task key, worker key, worker tasks key.
-- ARGV: leader token ('' to skip the lease check), concurrency set prefix,
--       then per decision: task id, worker name.
-- Returns per decision: {id, 'ok', name, args, kwargs, attempt, options, claim time} or
-- {id, reason, detail}; reason 'limited' means the task's concurrency key is at its cap.
if ARGV[1] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER this dispatcher no longer holds the lease')
end
local t = redis.call('TIME')
local now = string.format('%d.%06d', t[1], t[2])
local out = {}
local claimed = 0
local n = (#ARGV - 2) / 2
for i = 0, n - 1 do
  local id, worker = ARGV[3 + i * 2], ARGV[4 + i * 2]
  local tkey, wkey, wtasks = KEYS[5 + i * 3], KEYS[6 + i * 3], KEYS[7 + i * 3]
  local f = redis.call('HMGET', tkey, 'state', 'name', 'args', 'kwargs', 'attempt', 'priority',
                       'opts', 'concurrency_key', 'max_concurrent')
  local ckey = f[8] and (ARGV[2] .. f[8])
  local slots = tonumber(redis.call('HGET', wkey, 'slots') or '0')
  if f[1] ~= 'pending' then
    out[#out + 1] = {id, 'gone', f[1] or 'missing'}
  elseif slots == 0 then
    out[#out + 1] = {id, 'noworker', worker}
  elseif redis.call('SCARD', wtasks) >= slots then
    out[#out + 1] = {id, 'full', worker}
  elseif ckey and redis.call('SCARD', ckey) >= tonumber(f[9]) then
    out[#out + 1] = {id, 'limited', f[8]}
  else
    local attempt = tonumber(f[5] or '0') + 1
    redis.call('ZREM', KEYS[1], id)
    redis.call('HINCRBY', KEYS[3], f[6], -1)
    redis.call('HSET', tkey, 'state', 'dispatched', 'worker', worker,
               'dispatched_at', now, 'attempt', attempt)
    redis.call('SADD', wtasks, id)
    if ckey then redis.call('SADD', ckey, id) end
    claimed = claimed + 1
    out[#out + 1] = {id, 'ok', f[2], f[3], f[4], attempt, f[7] or '', now}
  end
end
if claimed > 0 then redis.call('HINCRBY', KEYS[2], 'dispatched', claimed) end
return out
