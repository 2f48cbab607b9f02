-- HyperLogLog membership, pottery's "copy, add, see if it changed" idea, atomically.
-- KEYS[1]: the HLL. KEYS[2]: a scratch key in the same cluster slot, made and deleted here.
-- ARGV: the encoded values. Returns one 1 (maybe present) or 0 (certainly absent) per value.
local src, tmp = KEYS[1], KEYS[2]
local exists = redis.call('EXISTS', src) == 1
-- Fails with WRONGTYPE before anything is written if the key is not an HLL.
if exists then redis.call('PFCOUNT', src) end
local out = {}
local fresh = false
for i = 1, #ARGV do
  if not fresh then
    redis.call('DEL', tmp)
    if exists then redis.call('COPY', src, tmp) end
    fresh = true
  end
  local changed = redis.call('PFADD', tmp, ARGV[i])
  out[i] = 1 - changed
  if changed == 1 then fresh = false end
end
redis.call('DEL', tmp)
return out
