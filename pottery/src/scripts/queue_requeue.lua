-- Moves up to ARGV[1] dead letters back to the queue, oldest first, as new jobs (their
-- delivery counts start again). KEYS[1]: the stream, KEYS[2]: the dead-letter stream.
-- Returns how many were moved.
local dead = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', tonumber(ARGV[1]))
for _, e in ipairs(dead) do
  local fields = e[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'v' then
      redis.call('XADD', KEYS[1], '*', 'v', fields[i + 1])
    end
  end
  redis.call('XDEL', KEYS[2], e[1])
end
return #dead
