-- Add to an integer field of a struct stored as a hash, refusing results outside the Rust
-- field's type (a u8 field never holds 300). Nothing is written when the result is refused.
-- KEYS[1]: the hash. ARGV: field, step, lowest allowed, highest allowed.
-- Returns {1, new value} or {0, the refused value}.
-- The bounds are only passed for types narrower than i64 (exact as Lua doubles); i64 fields
-- use plain HINCRBY, whose own range is theirs.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local n = 0
if cur then
  n = tonumber(cur)
  if n == nil or not string.match(cur, '^%-?%d+$') then
    return redis.error_reply('ERR hash value is not an integer')
  end
end
local target = n + tonumber(ARGV[2])
if target < tonumber(ARGV[3]) or target > tonumber(ARGV[4]) then
  return {0, tostring(target)}
end
return {1, redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])}
