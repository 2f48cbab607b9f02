-- Shared by the scripts of caches whose entries have their own time to live (prepended to
-- each). On servers without hash-field expiry an entry is stored as '<deadline ms>|<value>'
-- and its field is also in the hash's index of deadlines: a sorted set (field -> deadline ms,
-- in the hash's cluster slot) that every store and lookup trims a few at a time, deleting the
-- entries whose deadline passed, as the server's own expiry would.

-- The server's clock, in ms.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The deadline of an entry stored as '<deadline ms>|<value>', or nil (also for no entry).
local function deadline_of(v)
  if not v then
    return nil
  end
  local d = string.match(v, '^(%d+)|')
  return d and tonumber(d)
end

-- Deletes up to `limit` entries whose deadline has passed, earliest first. An entry stored
-- again since with a later deadline is kept (its index entry corrected), one stored without
-- a deadline is kept (and leaves the index).
local function trim(hash, index, now, limit)
  local due = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, limit)
  if #due == 0 then
    return
  end
  -- The fields due are the index's first: they all leave it (those stored again since with a
  -- later deadline come back below).
  redis.call('ZREMRANGEBYRANK', index, 0, #due - 1)
  local values = redis.call('HMGET', hash, unpack(due))
  local expired = {}
  for i = 1, #due do
    local d = deadline_of(values[i])
    if d and d > now then
      redis.call('ZADD', index, string.format('%d', d), due[i])
    elseif d then
      expired[#expired + 1] = due[i]
    end
  end
  if #expired > 0 then
    redis.call('HDEL', hash, unpack(expired))
  end
end
