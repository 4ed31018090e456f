-- Release a lease only if we still hold it.  KEYS: lease key.  ARGV: token.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
