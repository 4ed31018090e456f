-- Append one completed body to a ledger list (the ``ledger`` demo task), once
-- per body run: a call sent again after a lost reply (Redis restarting)
-- carries the same nonce and appends nothing, while another run of a body
-- has its own nonce and is appended, so the ledger shows every real run.
-- KEYS: ledger list, nonces seen.  ARGV: entry, nonce.  Returns 1 if appended.
local ledger, seen = KEYS[1], KEYS[2]
local entry, nonce = ARGV[1], ARGV[2]
if redis.call('SADD', seen, nonce) == 0 then return 0 end
redis.call('RPUSH', ledger, entry)
return 1
