-- The transactional outbox (scheduler/store/outbox.py): the Redis writes a
-- task body recorded, applied in the script that records its completion
-- (included inside the branch that has effects, so other calls skip it).
-- outbox_commit(ops, first) applies ops, the decoded JSON [[command,
-- argument, ...], ...], command i on KEYS[first + i - 1], all or nothing:
-- every command is checked against the keys' types first (as they will be
-- when it runs, so a SET then an RPUSH of one key is refused too), and one
-- that does not fit refuses the lot. Returns nil, or why nothing was applied;
-- a command that fails anyway (an INCRBY past 64 bits) is skipped and named,
-- the others stay applied.
local OUTBOX_KINDS = {RPUSH = 'list', LPUSH = 'list', SADD = 'set', ZADD = 'zset',
                      HSET = 'hash', INCRBY = 'string', SET = '', EXPIRE = ''}

local function outbox_int(v)
  return v == '0' or (#v <= 20 and string.match(v, '^%-?[1-9]%d*$') ~= nil)
end

local function outbox_refusal(ops, first)
  local kinds, ints = {}, {}
  for i, op in ipairs(ops) do
    local cmd, key = op[1], KEYS[first + i - 1]
    local need = OUTBOX_KINDS[cmd]
    if need == nil or key == nil then
      return string.format('effect %d: %s is not an outbox command with a key', i, tostring(cmd))
    end
    local kind = kinds[key] or redis.call('TYPE', key).ok
    if need ~= '' and kind ~= 'none' and kind ~= need then
      return string.format('effect %d (%s %s): the key holds a %s, not a %s', i, cmd, key,
                           kind, need)
    end
    if cmd == 'INCRBY' then
      local int = ints[key]
      if int == nil then int = kind == 'none' or outbox_int(redis.call('GET', key)) end
      if not int then
        return string.format('effect %d (INCRBY %s): the value is not an integer', i, key)
      end
      ints[key] = true
    elseif cmd == 'SET' then
      kind = 'string'
      ints[key] = outbox_int(op[2])
    end
    if kind == 'none' and need ~= '' then kind = need end
    kinds[key] = kind
  end
  return nil
end

local function outbox_commit(ops, first)
  local refusal = outbox_refusal(ops, first)
  if refusal then return 'no effect applied: ' .. refusal end
  local failed = {}
  for i, op in ipairs(ops) do
    local reply = redis.pcall(op[1], KEYS[first + i - 1], unpack(op, 2))
    if type(reply) == 'table' and reply.err then
      failed[#failed + 1] = string.format('effect %d (%s %s): %s', i, op[1],
                                          KEYS[first + i - 1], reply.err)
    end
  end
  if #failed > 0 then return table.concat(failed, '; ') end
  return nil
end
