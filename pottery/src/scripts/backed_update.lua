-- Compare-and-set of the fields an update changed, on a struct stored as a hash
-- (RedisBacked::update). The update's closure ran in Rust on the fields read by an earlier
-- HGETALL (or by the previous call of this script).
-- KEYS[1]: the hash. ARGV: one triple per changed field: the field; what it held when read,
-- as '1' followed by the bytes, or '0' when it was missing; the new value.
-- When the hash exists and every one of those fields still holds what was read, writes the
-- new values and returns {1}. Otherwise writes nothing and returns {0, HGETALL of the hash}
-- (empty when the hash is gone), so the caller retries on fresh fields without another read.
-- Fields the update did not change are not compared: writers of other fields (an HINCRBY,
-- an HSET of one field) neither make it retry nor are undone by it.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, {}}
end
for i = 1, #ARGV, 3 do
  local now = redis.call('HGET', KEYS[1], ARGV[i])
  local was = ARGV[i + 1]
  local same
  if string.sub(was, 1, 1) == '0' then
    same = (now == false)
  else
    same = (now == string.sub(was, 2))
  end
  if not same then
    return {0, redis.call('HGETALL', KEYS[1])}
  end
end
local writes = {}
for i = 1, #ARGV, 3 do
  writes[#writes + 1] = ARGV[i]
  writes[#writes + 1] = ARGV[i + 2]
end
redis.call('HSET', KEYS[1], unpack(writes))
return {1}
