-- Appends jobs to a reliable queue's stream. KEYS[1]: the stream; ARGV: the payloads.
-- Returns how many jobs the stream holds (waiting or in flight).
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'v', ARGV[i])
end
return redis.call('XLEN', KEYS[1])
