-- Raise a fence counter to at least ARGV[1], so that every later acquisition on a majority
-- sees a higher value. KEYS[1]: the fence key. Returns the counter's value.
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local floor = tonumber(ARGV[1])
if current < floor then
  redis.call('SET', KEYS[1], floor)
  return floor
end
return current
