-- Record a new strategy configuration version and tell the dispatcher.
-- KEYS: strategy hash, history list, inbox.
-- ARGV: record (a JSON object without "version" and "at"), expected version
--       ('' = any; else the call fails unless it is still the current one).
-- Returns {version, 'ok'} or {current version, 'conflict'}.
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= current then
  return {current, 'conflict'}
end
local version = current + 1
local t = redis.call('TIME')
local at = string.format('%d.%06d', t[1], t[2])
local record = '{"version":' .. version .. ',"at":' .. at .. ',' .. string.sub(ARGV[1], 2)
redis.call('HSET', KEYS[1], 'version', version, 'record', record)
redis.call('RPUSH', KEYS[2], record)
redis.call('RPUSH', KEYS[3], cjson.encode({steer = version}))
return {version, 'ok'}
