-- Store one cache entry with its own expiry, and slide the hash's expiry, atomically.
-- KEYS[1]: the cache hash. ARGV[1]: the hash's expiry in ms (0: none). ARGV[2]: the field.
-- ARGV[3]: the entry's time to live in ms. ARGV[4]: the value (JSON).
-- Where the server expires hash fields (HPEXPIRE: Redis >= 7.4, Valkey >= 9.0) the value is
-- stored as it is and the server removes it; elsewhere it is stored as
-- '<deadline ms, server clock>|<value>' and the lookup script checks the deadline. (No JSON
-- value starts with digits and a '|', so the two forms cannot be confused.)
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
local expired = redis.pcall('HPEXPIRE', KEYS[1], ARGV[3], 'FIELDS', 1, ARGV[2])
if type(expired) == 'table' and expired.err then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[1], ARGV[2], string.format('%d', now + tonumber(ARGV[3])) .. '|' .. ARGV[4])
end
if tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
