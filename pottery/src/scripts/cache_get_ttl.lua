-- A cache lookup of an entry with its own expiry, and the hash's sliding expiry, atomically.
-- KEYS[1]: the cache hash. ARGV[1]: the field. ARGV[2]: the hash's expiry in ms (0: none).
-- An entry stored as '<deadline ms>|<value>' (servers without hash-field expiry) is returned
-- while its deadline is ahead of the server's clock, and deleted once it is not; any other
-- entry is returned as it is (the server expires it). A hit never moves an entry's deadline.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not v then
  return false
end
local deadline, rest = string.match(v, '^(%d+)|(.*)$')
if not deadline then
  return v
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(deadline) <= now then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return false
end
return rest
