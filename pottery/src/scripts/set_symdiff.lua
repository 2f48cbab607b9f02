-- Symmetric difference of two sets on one server, atomically.
-- KEYS[1], KEYS[2]: the sets; KEYS[3] (optional): where to store the result.
-- Returns the members, or with KEYS[3] how many were stored.
local result = redis.call('SDIFF', KEYS[1], KEYS[2])
for _, m in ipairs(redis.call('SDIFF', KEYS[2], KEYS[1])) do
  table.insert(result, m)
end
if KEYS[3] then
  redis.call('DEL', KEYS[3])
  return sadd_all(KEYS[3], result)
end
return result
