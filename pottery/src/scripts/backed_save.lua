-- Save the changed fields of a loaded struct stored as a hash (Tracked::save): the fields it
-- changed when the hash exists, every field when it is gone (deleted since the load), so a
-- save never leaves a hash that holds only some of the struct.
-- KEYS[1]: the hash. ARGV[1]: c, the number of changed fields; then c field-value pairs (the
-- changed fields), then the other fields' pairs.
-- Returns 1 when only the changed fields were written, 0 when every field was.
local c = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2, 1 + 2 * c))
  return 1
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 0
