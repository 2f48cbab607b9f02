-- Redlock "release": delete the lock if this holder (ARGV[1]) has it, and tell waiters on the
-- channel named after the key. Returns 1 or 0. Same semantics as pottery's script (which does
-- not publish; waiters also poll). KEYS[1]: redlock:<key>.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', KEYS[1], 'released')
  return 1
end
return 0
