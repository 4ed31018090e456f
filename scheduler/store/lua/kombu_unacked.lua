-- @flags allow-oom: it only moves state (docs/reliability.md, "Backpressure"): the message
-- was just taken off its queue, and a delivery kombu cannot record would be lost.
-- Record a delivery as unacknowledged, as kombu's Redis QoS.append does with ZADD and
-- HSET in MULTI/EXEC (same keys, same values), for broker_config/transport.py.
-- KEYS: unacked index (zset), unacked (hash).
-- ARGV: delivery tag, time (score), the delivery as kombu's JSON [message, exchange, key].
-- Returns 1.
local index, unacked = KEYS[1], KEYS[2]
local tag, at, delivery = ARGV[1], ARGV[2], ARGV[3]
redis.call('ZADD', index, at, tag)
redis.call('HSET', unacked, tag, delivery)
return 1
