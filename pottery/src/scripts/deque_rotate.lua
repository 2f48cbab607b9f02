-- Rotate a deque n steps to the right (Python's deque.rotate(n); negative is left), for any n,
-- moving the shorter side. KEYS[1]: the list. ARGV[1]: n. Returns the length.
local key = KEYS[1]
local len = redis.call('LLEN', key)
if len == 0 then return 0 end
-- n mod len, exactly for any 64-bit n (a Lua number is a double: 2^53 + 1 would round), from
-- its decimal digits; a negative n rotates left, that is right by len - (|n| mod len).
local digits = ARGV[1]
local negative = string.sub(digits, 1, 1) == '-'
if negative then digits = string.sub(digits, 2) end
local r = 0
for i = 1, #digits do
  r = (r * 10 + string.byte(digits, i) - 48) % len
end
local k = r
if negative then k = (len - r) % len end
if k == 0 then return len end
local function push(cmd, items)
  for j = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, j, math.min(j + 999, #items)))
  end
end
if k <= len - k then
  -- The last k go to the front, in order.
  local moved = redis.call('LRANGE', key, -k, -1)
  redis.call('LTRIM', key, 0, len - k - 1)
  local reversed = {}
  for j = #moved, 1, -1 do reversed[#reversed + 1] = moved[j] end
  push('LPUSH', reversed)
else
  -- Same as rotating left by len - k: the first len - k go to the back.
  local m = len - k
  local moved = redis.call('LRANGE', key, 0, m - 1)
  redis.call('LTRIM', key, m, -1)
  push('RPUSH', moved)
end
return len
