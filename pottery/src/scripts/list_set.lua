-- Replace the element at position i (negative counts from the end).
-- KEYS[1]: the list. ARGV[1]: i. ARGV[2]: the element. Returns 1, or 0 when i is out of range.
local n = redis.call('LLEN', KEYS[1])
local i = tonumber(ARGV[1])
if i < 0 then i = i + n end
if i < 0 or i >= n then
  return 0
end
redis.call('LSET', KEYS[1], i, ARGV[2])
return 1
