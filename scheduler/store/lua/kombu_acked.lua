-- @flags allow-oom: it only frees state (docs/reliability.md, "Backpressure"): an
-- acknowledgement refused over maxmemory ended the worker (Celery took it as fatal).
-- Forget an acknowledged (or rejected) delivery, as kombu's Redis QoS does with ZREM
-- and HDEL in MULTI/EXEC (same keys), for broker_config/transport.py.
-- KEYS: unacked index (zset), unacked (hash).
-- ARGV: delivery tag.
-- Returns 1.
local index, unacked = KEYS[1], KEYS[2]
local tag = ARGV[1]
redis.call('ZREM', index, tag)
redis.call('HDEL', unacked, tag)
return 1
