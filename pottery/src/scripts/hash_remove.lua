-- Delete one field and return its value (nil if there was none), atomically.
-- KEYS[1]: the hash. ARGV[1]: field.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return old
