-- A cache lookup of an entry with its own expiry, the hash's sliding expiry, and a trim of
-- expired entries, atomically.
-- KEYS[1]: the cache hash; KEYS[2]: its index of deadlines. ARGV[1]: the field. ARGV[2]: the
-- hash's expiry in ms (0: none). ARGV[3]: how many expired entries to delete at most.
-- An entry stored as '<deadline ms>|<value>' (servers without hash-field expiry) is returned
-- while its deadline is ahead of the server's clock, and deleted once it is not; any other
-- entry is returned as it is (the server expires it). A hit never moves an entry's deadline.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
local now = now_ms()
trim(KEYS[1], KEYS[2], now, tonumber(ARGV[3]))
if not v then
  return false
end
local deadline, rest = string.match(v, '^(%d+)|(.*)$')
if not deadline then
  return v
end
if tonumber(deadline) <= now then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
return rest
