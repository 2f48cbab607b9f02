-- Gives a permit back: removes the holder's lease and announces it on the channel named after
-- the holders' key. KEYS[1]: the holders, ARGV[1]: uuid.
-- Returns 1 if the lease was live, 0 if it was not held (absent, or already ended).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not ends then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[1], 'released')
if tonumber(ends) <= now then return 0 end
return 1
