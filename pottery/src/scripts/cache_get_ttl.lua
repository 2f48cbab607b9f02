-- A cache lookup of an entry with its own expiry, and the hash's sliding expiry, atomically.
-- KEYS[1]: the cache hash. ARGV[1]: the field. ARGV[2]: the hash's expiry in ms (0: none).
-- Entries are stored as '<deadline ms, server clock>|<value>'. Returns the value of an entry
-- whose deadline is ahead, else nil; an expired (or unreadable) entry is deleted. A hit never
-- moves the entry's deadline.
local v = redis.call('HGET', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not v then
  return false
end
local sep = string.find(v, '|', 1, true)
local deadline = sep and tonumber(string.sub(v, 1, sep - 1))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not deadline or deadline <= now then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return false
end
return string.sub(v, sep + 1)
