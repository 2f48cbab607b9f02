-- Redlock "release": delete the lock if this holder (ARGV[1]) has it. Returns 1 or 0.
-- Same semantics as pottery's script. KEYS[1]: redlock:<key>.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
