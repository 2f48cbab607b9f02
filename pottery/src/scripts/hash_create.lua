-- Create a hash only if its key does not exist yet (pottery's init-with-data, atomically).
-- KEYS[1]: the hash. ARGV: field1, value1, field2, value2, ...
-- Returns 1 if created (or nothing to write and the key is free), 0 if the key exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
-- unpack() has a limit on how many values it returns, so write in chunks of 1000 pairs.
for i = 1, #ARGV, 2000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
return 1
