-- NextId fast path: advance the sequence from the value this process stored last, only if it
-- is still exactly that value (so another process's id, or a reset, sends us back to the full
-- GET-then-set round). KEYS[1]: nextid:<key>. ARGV[1]: expected value. ARGV[2]: new value.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return tonumber(ARGV[2])
end
return false
