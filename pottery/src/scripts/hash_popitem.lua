-- Python pottery's popitem: removes the first field in HSCAN order and returns it with its
-- value, atomically (pottery does next(iter(d)), then a read and a delete).
-- KEYS[1]: the hash. Returns {field, value}, or false when the hash is empty.
local cursor = '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 10)
  cursor = page[1]
  local items = page[2]
  if #items > 0 then
    redis.call('HDEL', KEYS[1], items[1])
    return {items[1], items[2]}
  end
until cursor == '0'
return false
