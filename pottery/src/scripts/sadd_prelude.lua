-- Shared by the scripts that write a set's members (prepended to each).

-- Adds `members` to the set at `key`, 2000 at a time (within what one unpack may take), and returns
-- how many were given.
local function sadd_all(key, members)
  local n = #members
  for i = 1, n, 2000 do
    redis.call('SADD', key, unpack(members, i, math.min(i + 1999, n)))
  end
  return n
end

