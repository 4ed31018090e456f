-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Move retried tasks whose backoff has passed from the delayed set to the
-- pending index, and tell the dispatcher (inbox), which orders them again.
-- (They are still 'pending' in their record and counted by priority: only
-- the index they wait in changes.)
-- KEYS: delayed, pending, inbox.
-- ARGV: task key prefix, largest number to move.
-- Returns {moved, next not-before time or ''}.
-- @include _time
-- @include _pending_wire
local delayed, pending, inbox = KEYS[1], KEYS[2], KEYS[3]
local task_prefix, limit = ARGV[1], tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', delayed, '-inf', tonumber(now_text()), 'LIMIT', 0, limit)
local moved = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', delayed, id)
  local f = redis.call('HMGET', task_prefix .. id, 'state', 'name', 'priority', 'seq',
                       'submitted_at', 'deadline', 'expected_duration', 'affinity_key',
                       'duration_key', 'concurrency_key', 'max_concurrent', 'resources',
                       'labels', 'on_queue', 'prefer', 'path', 'latest')
  if f[1] == 'pending' then
    redis.call('ZADD', pending, f[4], id)
    redis.call('RPUSH', inbox, pending_wire(id, f[2], f[3], f[4], f[5], f[6], f[7], f[8],
                                            f[9], f[10], f[11], f[12], f[13], f[14], f[15],
                                            f[16], f[17]))
    moved = moved + 1
  end
end
local nxt = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
return {moved, nxt[2] or ''}
