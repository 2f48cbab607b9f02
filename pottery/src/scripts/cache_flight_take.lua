-- Takes a cache entry's cross-process computation lease, unless the entry is there already.
-- KEYS[1]: the cache hash; KEYS[2]: the lease key (same cluster slot). ARGV[1]: the field;
-- ARGV[2]: this caller's uuid; ARGV[3]: the lease in ms.
-- Returns 2 when the entry is stored (read it), 1 when the lease is this caller's, 0 when
-- another caller holds it. Checking and taking at once closes the gap in which a leader
-- stores the value and frees the lease between a waiter's look and its take.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 2
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return 1
end
return 0
