-- Ends a cache entry's cross-process computation lease, if this caller (ARGV[1]) still holds
-- it. KEYS[1]: the lease key. Returns 1 or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
