-- Add counts to a counter (a hash of decimal integers), all or nothing.
-- KEYS[1]: the hash. ARGV: field1, delta1, field2, delta2, ...
-- HINCRBY checks every value first would need a pass of its own; Redis runs a script without
-- interleaving, and a non-integer value aborts with an error before later fields, so fields
-- are checked up front to keep the update all-or-nothing.
for i = 1, #ARGV, 2 do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v and not string.match(v, '^%-?%d+$') then
    return redis.error_reply('ERR hash value is not an integer: ' .. ARGV[i])
  end
end
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
