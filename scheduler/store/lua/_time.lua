-- The Redis server clock as text with six decimals ('1712345678.123456'): the
-- one clock and the one format of every time a script records or compares.
local function now_text()
  local t = redis.call('TIME')
  return string.format('%d.%06d', t[1], t[2])
end
