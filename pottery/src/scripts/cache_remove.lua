-- Deletes one cache entry, and its field from the index of deadlines.
-- KEYS[1]: the cache hash; KEYS[2]: its index of deadlines. ARGV[1]: the field.
-- Returns 1 when a live entry was deleted, 0 when there was none (or it had expired).
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local d = deadline_of(v)
if d and d <= now_ms() then
  return 0
end
return 1
