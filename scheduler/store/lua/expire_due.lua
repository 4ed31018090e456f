-- End, as expired, the tasks whose Celery `expires` time has passed while they
-- were still pending (in the pending index or waiting for their countdown in the
-- delayed set); the dispatcher drops them from its queue (an inbox cancel entry).
-- Tasks already dispatched or ended just leave the set: a dispatched one is
-- checked by its worker against the same time, in the message.
-- KEYS: expiring, pending, delayed, stats, pending_by_priority, events, inbox.
-- ARGV: task key prefix, result ttl, events maxlen, largest number to look at.
-- Returns {expired, next expires time or ''}.
-- @include _time
-- @include _event
local expiring, pending, delayed, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local by_priority, events, inbox = KEYS[5], KEYS[6], KEYS[7]
local prefix, result_ttl, events_maxlen, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local now = now_text()
local due = redis.call('ZRANGEBYSCORE', expiring, '-inf', tonumber(now), 'WITHSCORES',
                       'LIMIT', 0, limit)
local ended = 0
for i = 1, #due, 2 do
  local id, at = due[i], due[i + 1]
  redis.call('ZREM', expiring, id)
  local key = prefix .. id
  local f = redis.call('HMGET', key, 'state', 'name', 'priority', 'submitted_at', 'attempt')
  if f[1] == 'pending' then
    redis.call('ZREM', pending, id)
    redis.call('ZREM', delayed, id)
    redis.call('HINCRBY', by_priority, f[3], -1)
    redis.call('HSET', key, 'state', 'expired', 'finished_at', now, 'reason', 'expired',
               'error', 'expired: not started by its expires time (' .. at .. ')')
    redis.call('HINCRBY', stats, 'expired', 1)
    append_event(events, events_maxlen, id, f[2], 'expired', '', f[3], f[4],
      'finished_at', now, 'attempt', f[5] or '')
    redis.call('EXPIRE', key, result_ttl)
    redis.call('RPUSH', inbox, cjson.encode({cancel = id}))
    ended = ended + 1
  end
end
local nxt = redis.call('ZRANGE', expiring, 0, 0, 'WITHSCORES')
return {ended, nxt[2] or ''}
