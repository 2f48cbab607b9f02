-- A cache's live entries: the hash's fields, less those its index of deadlines says have
-- expired and are not deleted yet.
-- KEYS[1]: the cache hash; KEYS[2]: its index of deadlines.
local n = redis.call('HLEN', KEYS[1])
local due = redis.call('ZCOUNT', KEYS[2], '-inf', now_ms())
if due >= n then
  return 0
end
return n - due
