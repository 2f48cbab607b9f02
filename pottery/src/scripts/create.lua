-- Create a container only if its key does not exist yet (pottery's init-with-data, atomically).
-- KEYS[1]: the key. ARGV[1]: the command that writes (HSET, SADD or RPUSH). ARGV[2..]: its
-- arguments (field/value pairs for HSET).
-- Returns 1 if created (or nothing to write and the key is free), 0 if the key exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
-- unpack() has a limit on how many values it returns, so write in chunks (an even number,
-- so HSET pairs stay whole).
local n = #ARGV
for i = 2, n, 2000 do
  redis.call(ARGV[1], KEYS[1], unpack(ARGV, i, math.min(i + 1999, n)))
end
return 1
