-- Append prepared tasks to the hand-off list, only while holding the lease.
-- KEYS: leader, hand-off list.
-- ARGV: token, then entries ("<id>\t<flag><message template>", see finish.lua).
-- Returns the list's length before the append: workers take from its head, so
-- the dispatcher knows that all but the last that-many of its entries are gone.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('NOTLEADER this dispatcher no longer holds the lease')
end
local before = redis.call('LLEN', KEYS[2])
for i = 2, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
return before
