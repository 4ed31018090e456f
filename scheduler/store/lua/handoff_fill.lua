-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Append prepared tasks to the hand-off list, only while holding the lease.
-- KEYS: leader, hand-off list.
-- ARGV: token, then entries ("<id>\t<flag><message template>", see _hand_off.lua).
-- Returns the list's length before the append: workers take from its head, so
-- the dispatcher knows that all but the last that-many of its entries are gone.
local leader, handoff = KEYS[1], KEYS[2]
local token = ARGV[1]
local FIRST_ENTRY = 2
if redis.call('GET', leader) ~= token then
  return redis.error_reply('NOTLEADER this dispatcher no longer holds the lease')
end
local before = redis.call('LLEN', handoff)
for i = FIRST_ENTRY, #ARGV do redis.call('RPUSH', handoff, ARGV[i]) end
return before
