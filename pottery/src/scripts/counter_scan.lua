-- Every field and value of a hash, flat, in HSCAN order from cursor 0: the order in which
-- Python's Counter(redis_counter) reads them, so most_common breaks ties the same way.
-- One call, so it is also one consistent snapshot (HGETALL's order differs on large hashes).
-- KEYS[1]: the hash.
local out, cursor = {}, '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 1000)
  cursor = page[1]
  for _, x in ipairs(page[2]) do
    out[#out + 1] = x
  end
until cursor == '0'
return out
