-- Store one cache entry with its own expiry, slide the hash's expiry, and trim expired
-- entries, atomically.
-- KEYS[1]: the cache hash; KEYS[2]: its index of deadlines. ARGV[1]: the hash's expiry in ms
-- (0: none). ARGV[2]: the field. ARGV[3]: the entry's time to live in ms. ARGV[4]: the value
-- (JSON). ARGV[5]: how many expired entries to delete at most.
-- Where the server expires hash fields (HPEXPIRE: Redis >= 7.4, Valkey >= 9.0) the value is
-- stored as it is and the server removes it; elsewhere it is stored as
-- '<deadline ms, server clock>|<value>', its field enters the index, and the lookup script
-- checks the deadline. (No JSON value starts with digits and a '|', so the two forms cannot
-- be confused.)
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
local expired = redis.pcall('HPEXPIRE', KEYS[1], ARGV[3], 'FIELDS', 1, ARGV[2])
local now = now_ms()
if type(expired) == 'table' and expired.err then
  local deadline = string.format('%d', now + tonumber(ARGV[3]))
  redis.call('HSET', KEYS[1], ARGV[2], deadline .. '|' .. ARGV[4])
  redis.call('ZADD', KEYS[2], deadline, ARGV[2])
end
trim(KEYS[1], KEYS[2], now, tonumber(ARGV[5]))
if tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 1
