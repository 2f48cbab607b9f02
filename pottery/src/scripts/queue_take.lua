-- A reliable queue's delivery without waiting: first a job whose visibility timeout passed
-- (its consumer died, dropped it, or gave it back), else a new one. Jobs delivered
-- `max_deliveries` times already go to the dead-letter stream instead.
-- KEYS[1]: the stream, KEYS[2]: the dead-letter stream
-- ARGV[1]: group, ARGV[2]: consumer, ARGV[3]: visibility timeout (ms), ARGV[4]: max deliveries
-- Returns {id, payload, deliveries} or {} when nothing is ready.
local group, consumer = ARGV[1], ARGV[2]
local visibility, max = tonumber(ARGV[3]), tonumber(ARGV[4])
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], group, '0', 'MKSTREAM')
if not ok and not string.find(tostring(err and err.err or err), 'BUSYGROUP') then
  return redis.error_reply(tostring(err and err.err or err))
end
local expired = redis.call('XPENDING', KEYS[1], group, 'IDLE', visibility, '-', '+', 16)
for _, p in ipairs(expired) do
  local id, count = p[1], tonumber(p[4])
  local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
  if not entry then
    -- Deleted from the stream meanwhile: nothing to deliver.
    redis.call('XACK', KEYS[1], group, id)
  elseif count >= max then
    redis.call('XADD', KEYS[2], '*', 'v', entry[2][2], 'id', id, 'deliveries', count)
    redis.call('XACK', KEYS[1], group, id)
    redis.call('XDEL', KEYS[1], id)
  else
    local claimed = redis.call('XCLAIM', KEYS[1], group, consumer, visibility, id)
    if claimed[1] then
      return {claimed[1][1], claimed[1][2][2], count + 1}
    end
  end
end
local new = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', KEYS[1], '>')
if new and new[1] and new[1][2][1] then
  local entry = new[1][2][1]
  return {entry[1], entry[2][2], 1}
end
return {}
