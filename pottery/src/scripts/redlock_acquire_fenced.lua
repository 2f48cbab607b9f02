-- Redlock acquire with a fencing token: SET NX PX as pottery does, and when it succeeds,
-- increment this master's fence counter. KEYS[1]: redlock:<key>; KEYS[2]: {redlock:<key>}:fence
-- (same cluster slot). ARGV[1]: holder uuid; ARGV[2]: lease in ms.
-- Returns the fence value, or 0 when the lock is held by someone else.
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return redis.call('INCR', KEYS[2])
end
return 0
