-- Cancel a task that has not started. A pending task leaves the index. A
-- dispatched one is cancelled only while its message still waits in its
-- worker's queue: the message is marked so that the worker waits for its start
-- (which then refuses it) instead of starting the body early, and the worker
-- frees the slot without running it. A message the worker has already taken
-- may be starting its body this instant (an early start, see start.lua), so
-- the task is then treated as running: flagged, and the answer is 'running'.
-- KEYS: task, pending, stats, pending_by_priority, events, inbox, delayed (retry backoff).
-- ARGV: id, reason, result ttl, events maxlen, worker queue prefix.
-- Returns 'cancelled', 'running', 'missing' or 'already:<terminal state>'.
-- @include _hold_message
local f = redis.call('HMGET', KEYS[1], 'state', 'name', 'priority', 'submitted_at', 'worker',
                     'attempt')
local state = f[1]
if not state then return 'missing' end

-- The dispatched task's message, still in its worker's queue: held back.
local function hold_queued()
  local queue = ARGV[5] .. (f[5] or '')
  local tag = '"delivery_tag":' .. cjson.encode(ARGV[1] .. '.' .. (f[6] or ''))
  local msgs = redis.call('LRANGE', queue, 0, -1)
  for i, msg in ipairs(msgs) do
    if string.find(msg, tag, 1, true) then
      redis.call('LSET', queue, i - 1, hold_message(msg))
      return true
    end
  end
  return false
end

if state == 'dispatched' and not hold_queued() then state = 'running' end
if state == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1')
  return 'running'
end
if state ~= 'pending' and state ~= 'dispatched' then return 'already:' .. state end
local t = redis.call('TIME')
local now = string.format('%d.%06d', t[1], t[2])
if state == 'pending' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  if KEYS[7] then redis.call('ZREM', KEYS[7], ARGV[1]) end
  redis.call('HINCRBY', KEYS[4], f[3], -1)
  redis.call('RPUSH', KEYS[6], cjson.encode({cancel = ARGV[1]}))
end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', now, 'error', ARGV[2],
           'reason', 'cancelled')
redis.call('HINCRBY', KEYS[3], 'cancelled', 1)
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*',
  'id', ARGV[1], 'name', f[2] or '', 'state', 'cancelled', 'worker', f[5] or '',
  'priority', f[3] or '', 'submitted_at', f[4] or '', 'finished_at', now)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 'cancelled'
