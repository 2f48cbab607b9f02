-- Replace a set's members, atomically: what *_store writes when the result was computed in
-- the client. KEYS[1]: the set. ARGV: the members (none leaves no key, as Redis does).
redis.call('DEL', KEYS[1])
return sadd_all(KEYS[1], ARGV)
