-- Record a new strategy configuration version and tell the dispatcher.
-- KEYS: strategy hash, history list, inbox.
-- ARGV: record (a JSON object without "version" and "at"), expected version
--       ('' = any; else the call fails unless it is still the current one).
-- Returns {version, 'ok'} or {current version, 'conflict'}.
-- @include _time
local strategy, history, inbox = KEYS[1], KEYS[2], KEYS[3]
local body, expected = ARGV[1], ARGV[2]
local current = tonumber(redis.call('HGET', strategy, 'version') or '0')
if expected ~= '' and tonumber(expected) ~= current then
  return {current, 'conflict'}
end
local version = current + 1
local record = '{"version":' .. version .. ',"at":' .. now_text() .. ',' .. string.sub(body, 2)
redis.call('HSET', strategy, 'version', version, 'record', record)
redis.call('RPUSH', history, record)
redis.call('RPUSH', inbox, cjson.encode({steer = version}))
return {version, 'ok'}
