-- Store one cache entry with its own expiry, and slide the hash's expiry, atomically.
-- KEYS[1]: the cache hash. ARGV[1]: the hash's expiry in ms (0: none). ARGV[2]: the field.
-- ARGV[3]: the entry's time to live in ms. ARGV[4]: the value. The deadline is taken from
-- the server's clock, so every process agrees on it.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[2], string.format('%d', now + tonumber(ARGV[3])) .. '|' .. ARGV[4])
if tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
