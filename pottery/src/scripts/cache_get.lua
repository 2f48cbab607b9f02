-- A cache lookup with a sliding expiry, atomically.
-- KEYS[1]: the cache hash. ARGV[1]: the field. ARGV[2]: the expiry in ms (0: none).
-- Returns the stored value, or nil.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
