-- Replace a set's members, atomically: what *_store writes when the result was computed in
-- the client. KEYS[1]: the set. ARGV: the members (none leaves no key, as Redis does).
redis.call('DEL', KEYS[1])
local n = #ARGV
for i = 1, n, 2000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 1999, n)))
end
return n
