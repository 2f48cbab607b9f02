-- NextId claim of ARGV[3] ids. KEYS[1]: nextid:<key>. ARGV[1]: the largest value the caller
-- knows (base); ARGV[2]: base + count; ARGV[3]: count.
-- The counter becomes max(current, base) + count and the new value is returned (as a string:
-- exact up to 2^63-1, where Lua numbers stop at 2^53). The caller owns the ids
-- (value - count, value] when a majority of masters return the same value. Values only grow.
local cur = redis.call('GET', KEYS[1])
if cur then
  if not (cur == '0' or string.match(cur, '^[1-9]%d*$')) or #cur > 19 then
    return redis.error_reply('NOTANID ' .. KEYS[1] .. ' holds a value that is not an id')
  end
  if #cur > #ARGV[1] or (#cur == #ARGV[1] and cur > ARGV[1]) then
    if #cur == 19 and cur > '9223372036854775807' then
      return redis.error_reply('NOTANID ' .. KEYS[1] .. ' holds a value that is not an id')
    end
    local ok = redis.pcall('INCRBY', KEYS[1], ARGV[3])
    if type(ok) == 'table' and ok.err then
      return redis.error_reply('EXHAUSTED ' .. KEYS[1] .. ' has no ids left below 2^63')
    end
    return redis.call('GET', KEYS[1])
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return ARGV[2]
