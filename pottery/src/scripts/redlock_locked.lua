-- Redlock "acquired": the lease's remaining milliseconds if this holder (ARGV[1]) has it,
-- else 0. Same semantics as pottery's script. KEYS[1]: redlock:<key>.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl > 0 then
    return pttl
  end
end
return 0
