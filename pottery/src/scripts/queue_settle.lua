-- Acts on one delivery of a reliable queue's job, if it is still the current delivery
-- (held by this consumer, delivered this many times): otherwise it expired and the job was,
-- or will be, delivered again, and nothing is done.
-- KEYS[1]: the stream; ARGV[1]: group, ARGV[2]: consumer, ARGV[3]: id, ARGV[4]: deliveries,
-- ARGV[5]: 'ack' | 'extend' | 'nack', ARGV[6]: visibility timeout (ms, for nack)
-- Returns 1 if done, 0 if this delivery is no longer current.
local group, consumer, id = ARGV[1], ARGV[2], ARGV[3]
local p = redis.call('XPENDING', KEYS[1], group, id, id, 1)[1]
if not p or p[2] ~= consumer or tonumber(p[4]) ~= tonumber(ARGV[4]) then
  return 0
end
local action = ARGV[5]
if action == 'ack' then
  redis.call('XACK', KEYS[1], group, id)
  redis.call('XDEL', KEYS[1], id)
elseif action == 'extend' then
  redis.call('XCLAIM', KEYS[1], group, consumer, 0, id, 'JUSTID')
else
  -- Visible again at once: idle for a whole visibility timeout.
  redis.call('XCLAIM', KEYS[1], group, consumer, 0, id, 'IDLE', tonumber(ARGV[6]), 'JUSTID')
end
return 1
