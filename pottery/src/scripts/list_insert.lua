-- Insert one element before position i, with Python's list.insert semantics for any i
-- (negative counts from the end; beyond either end clamps), atomically and without sentinels.
-- KEYS[1]: the list. ARGV[1]: i. ARGV[2]: the element. ARGV[3]: maxlen, or -1 for none.
-- Returns the new length, or -1 when the list is already at maxlen.
local key = KEYS[1]
local n = redis.call('LLEN', key)
local maxlen = tonumber(ARGV[3])
if maxlen >= 0 and n >= maxlen then
  return -1
end
local i = tonumber(ARGV[1])
if i < 0 then
  i = i + n
  if i < 0 then i = 0 end
end
if i > n then i = n end
local function push(cmd, items)
  for j = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, j, math.min(j + 999, #items)))
  end
end
if i == 0 then
  return redis.call('LPUSH', key, ARGV[2])
elseif i == n then
  return redis.call('RPUSH', key, ARGV[2])
elseif i <= n - i then
  -- Move the shorter side: the head.
  local head = redis.call('LRANGE', key, 0, i - 1)
  redis.call('LTRIM', key, i, -1)
  redis.call('LPUSH', key, ARGV[2])
  local reversed = {}
  for j = #head, 1, -1 do reversed[#reversed + 1] = head[j] end
  push('LPUSH', reversed)
else
  local tail = redis.call('LRANGE', key, i, -1)
  redis.call('LTRIM', key, 0, i - 1)
  redis.call('RPUSH', key, ARGV[2])
  push('RPUSH', tail)
end
return n + 1
