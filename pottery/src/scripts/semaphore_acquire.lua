-- A semaphore permit: a lease in a sorted set of holders (member: the holder's uuid, score:
-- when its lease ends, in ms of server time), granted while fewer than `permits` leases live.
-- KEYS[1]: the holders (sorted set), KEYS[2]: the fencing counter
-- ARGV[1]: uuid, ARGV[2]: permits, ARGV[3]: lease (ms)
-- Returns {1, token, lease_ms} when granted, {0, ms until the earliest lease ends, 0} when full.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  local token = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], last[2])
  return {1, token, lease}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(first[2]) - now, 0}
