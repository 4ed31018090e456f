-- Count the pending tasks, inbox entries and hand-off entries at one instant. A script,
-- not MULTI/EXEC: Redis over its maxmemory refuses every command queued in a MULTI,
-- reads too, and a script that only reads runs (docs/reliability.md, "Backpressure").
-- KEYS: pending, inbox, handoff.
-- ARGV: none.
-- Returns {pending tasks, inbox entries, hand-off entries}.
local pending, inbox, handoff = KEYS[1], KEYS[2], KEYS[3]
return {redis.call('ZCARD', pending), redis.call('LLEN', inbox), redis.call('LLEN', handoff)}
