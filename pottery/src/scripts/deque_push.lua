-- Push to one end of a deque and trim it to maxlen in the same atomic step.
-- KEYS[1]: the list. ARGV[1]: 'R' (back) or 'L' (front). ARGV[2]: maxlen, or -1 for none.
-- ARGV[3..]: the elements, in push order. Returns the new length.
local key = KEYS[1]
local maxlen = tonumber(ARGV[2])
local n = #ARGV
if maxlen == 0 then
  return 0
end
local cmd = (ARGV[1] == 'L') and 'LPUSH' or 'RPUSH'
-- Only the last maxlen pushed can survive.
local first = 3
if maxlen > 0 and n - 2 > maxlen then
  first = n - maxlen + 1
end
local len = 0
for j = first, n, 1000 do
  len = redis.call(cmd, key, unpack(ARGV, j, math.min(j + 999, n)))
end
if maxlen > 0 and len > maxlen then
  if cmd == 'RPUSH' then
    redis.call('LTRIM', key, -maxlen, -1)
  else
    redis.call('LTRIM', key, 0, maxlen - 1)
  end
  len = maxlen
end
return len
