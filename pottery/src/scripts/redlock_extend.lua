-- Redlock "extend": reset the lease to ARGV[2] ms if this holder (ARGV[1]) has it.
-- Returns 1 if extended, else 0. Same semantics as pottery's script. KEYS[1]: redlock:<key>.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
