-- @flags allow-oom: it only moves or frees state (docs/reliability.md, "Backpressure").
-- Execution guard, before a task body runs: take the task's guard lock unless
-- the body already finished (a redelivery) or another live delivery runs it
-- (see _guard_take.lua).
-- KEYS: guard lock, done marker.  ARGV: owner token, ttl (ms), attempt.
-- Returns {'run'}, {'done', outcome JSON} or {'held', holder token}.
-- @include _guard_take
local lock, done_marker = KEYS[1], KEYS[2]
local token, ttl_ms, attempt = ARGV[1], ARGV[2], ARGV[3]
local answer, detail = take_guard(lock, done_marker, token, ttl_ms, attempt)
if answer then return {answer, detail} end
return {'run'}
