-- Set one field and return its previous value (nil if there was none), atomically.
-- KEYS[1]: the hash. ARGV[1]: field. ARGV[2]: value.
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return old
