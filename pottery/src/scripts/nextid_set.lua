-- NextId compare-and-set, as pottery's script: store ARGV[1] if the current value is missing,
-- not a number, or smaller; return the new value, else nil. KEYS[1]: nextid:<key>.
local curr = tonumber(redis.call('GET', KEYS[1]))
local nxt = tonumber(ARGV[1])
if curr == nil or curr < nxt then
  redis.call('SET', KEYS[1], ARGV[1])
  return nxt
end
return false
