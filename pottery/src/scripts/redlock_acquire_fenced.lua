-- Redlock acquire with a fencing token: SET NX PX as pottery does, and when it succeeds,
-- increment this master's fence counter. KEYS[1]: redlock:<key>; KEYS[2]: {redlock:<key>}:fence
-- (same cluster slot). ARGV[1]: holder uuid; ARGV[2]: lease in ms.
-- Returns {1, fence} when acquired, {0, pttl} when held by someone else. A fence that is not a
-- decimal counter is an error, checked before anything is written.
local fence = redis.call('GET', KEYS[2])
if fence and not string.match(fence, '^%d+$') then
  return redis.error_reply('CORRUPT the fence counter ' .. KEYS[2] .. ' is not a number')
end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return {1, redis.call('INCR', KEYS[2])}
end
return {0, redis.call('PTTL', KEYS[1])}
