-- Redlock acquire: SET NX PX as pottery does (the same key, value and lease), and when the key
-- is taken, say for how long. KEYS[1]: redlock:<key>. ARGV[1]: holder uuid; ARGV[2]: lease ms.
-- Returns {1, 0} when acquired, {0, pttl} when held (pttl -1: a key with no expiry, which no
-- Redlock holder ever writes).
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[1])}
