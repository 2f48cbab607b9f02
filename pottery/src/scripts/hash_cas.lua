-- Compare-and-set of one hash field (the dict entry API's and_modify).
-- KEYS[1]: the hash. ARGV[1]: field. ARGV[2]: the value read before. ARGV[3]: the new value.
-- Returns {1} when it wrote; otherwise what is there now: {0} when the field is gone,
-- {0, value} when another client changed it.
local now = redis.call('HGET', KEYS[1], ARGV[1])
if now == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return {1}
end
if now == false then
  return {0}
end
return {0, now}
