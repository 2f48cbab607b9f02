-- Load the entries asked for and slide the expiry, atomically.
-- KEYS[1]: the cache hash. ARGV[1]: the expiry in ms (0: none). ARGV[2..]: the fields.
-- Returns one value (or nil) per field, in order. unpack() has a limit on how many values it
-- returns, so read in chunks.
local out = {}
local n = #ARGV
for i = 2, n, 2000 do
  local part = redis.call('HMGET', KEYS[1], unpack(ARGV, i, math.min(i + 1999, n)))
  for j = 1, #part do
    out[#out + 1] = part[j]
  end
end
if tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return out
