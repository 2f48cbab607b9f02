-- HyperLogLog membership, pottery's "copy, add, see if it changed" idea, atomically.
-- KEYS[1]: the HLL. KEYS[2]: a scratch key in the same cluster slot, made and deleted here.
-- ARGV: the encoded values. Returns one 1 (maybe present) or 0 (certainly absent) per value.
-- The source key is only read (EXISTS, COPY): even PFCOUNT would write it, since it caches the
-- cardinality in the HLL's header. Type checks run on the copy, as Python's contains does.
local src, tmp = KEYS[1], KEYS[2]
local exists = redis.call('EXISTS', src) == 1
redis.call('DEL', tmp)
if exists then
  redis.call('COPY', src, tmp)
  -- Fails with WRONGTYPE (or INVALIDOBJ) before any value is tried if the key is not an HLL;
  -- the scratch key goes first, so nothing is left behind.
  local ok = redis.pcall('PFCOUNT', tmp)
  if type(ok) == 'table' and ok.err then
    redis.call('DEL', tmp)
    return ok
  end
end
local out = {}
local fresh = true
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
