-- finish.lua's learning from a finished run. Each function also notes what it
-- learned in `freed`, the slot-freed inbox entry, so the dispatcher, which keeps
-- the estimates in memory, learns it at once.

-- The duration EMA of `key` (hash `ema`, run counts in `counts`) takes in a
-- successful run of `runtime` seconds with weight `alpha`. Returns the EMA the
-- run was predicted by, as text ('' before the first run), for its event.
local function learn_duration(freed, ema, counts, key, runtime, alpha)
  local old = tonumber(redis.call('HGET', ema, key) or '')
  local new = runtime
  local prior = ''
  if old then
    new = alpha * runtime + (1 - alpha) * old
    prior = string.format('%.6f', old)
  end
  redis.call('HSET', ema, key, string.format('%.6f', new))
  redis.call('HINCRBY', counts, key, 1)
  freed.k = key
  freed.e = new
  return prior
end

-- The affinity score of `worker` for affinity key `key` (hash `scores`) moves
-- by `step` up after a success, down after a failure, within [0, 1].
local function learn_affinity(freed, scores, worker, key, succeeded, step)
  local score = tonumber(redis.call('HGET', scores, worker) or '0')
  if succeeded then score = score + step else score = score - step end
  score = math.max(0, math.min(1, score))
  redis.call('HSET', scores, worker, string.format('%.4f', score))
  freed.a = key
  freed.s = score
end
