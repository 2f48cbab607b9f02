-- Remove and return the element at position i (Python's list.pop(i)), atomically and without
-- sentinels. KEYS[1]: the list. ARGV[1]: i (negative counts from the end).
-- Returns the element, or nil when i is out of range.
local key = KEYS[1]
local n = redis.call('LLEN', key)
local i = tonumber(ARGV[1])
if i < 0 then i = i + n end
if i < 0 or i >= n then
  return false
end
if i == 0 then
  return redis.call('LPOP', key)
elseif i == n - 1 then
  return redis.call('RPOP', key)
end
local value = redis.call('LINDEX', key, i)
local function push(cmd, items)
  for j = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, j, math.min(j + 999, #items)))
  end
end
if i < n - 1 - i then
  local head = redis.call('LRANGE', key, 0, i - 1)
  redis.call('LTRIM', key, i + 1, -1)
  local reversed = {}
  for j = #head, 1, -1 do reversed[#reversed + 1] = head[j] end
  push('LPUSH', reversed)
else
  local tail = redis.call('LRANGE', key, i + 1, -1)
  redis.call('LTRIM', key, 0, i - 1)
  push('RPUSH', tail)
end
return value
