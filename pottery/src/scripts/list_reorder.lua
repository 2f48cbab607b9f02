-- Reverse or sort a list in place, atomically. KEYS[1]: the list. ARGV[1]: 'reverse' or
-- 'sort'. Sorting decodes the pottery JSON elements: all numbers sort numerically, all strings
-- by code point (as Python compares str); anything else is an error. Equal elements keep their
-- order, like Python's stable sort.
local key = KEYS[1]
local items = redis.call('LRANGE', key, 0, -1)
local n = #items
if n < 2 then return n end
local out = {}
if ARGV[1] == 'reverse' then
  for j = n, 1, -1 do out[#out + 1] = items[j] end
else
  local decorated = {}
  local kind = nil
  for j = 1, n do
    local ok, v = pcall(cjson.decode, items[j])
    local t = ok and type(v) or 'undecodable'
    if t ~= 'number' and t ~= 'string' then
      return redis.error_reply('ERR cannot sort a list holding a ' .. t .. ' element')
    end
    if kind and kind ~= t then
      return redis.error_reply('ERR cannot sort a list mixing numbers and strings')
    end
    kind = t
    decorated[j] = {v, j}
  end
  table.sort(decorated, function(a, b)
    if a[1] == b[1] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  for j = 1, n do out[j] = items[decorated[j][2]] end
end
redis.call('DEL', key)
for j = 1, n, 1000 do
  redis.call('RPUSH', key, unpack(out, j, math.min(j + 999, n)))
end
return n
