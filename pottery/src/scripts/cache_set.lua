-- Store cache entries and slide the expiry, atomically.
-- KEYS[1]: the cache hash. ARGV[1]: the expiry in ms (0: none). ARGV[2..]: field/value pairs.
local n = #ARGV
for i = 2, n, 2000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 1999, n)))
end
if tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
