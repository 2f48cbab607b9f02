-- GCRA (generic cell rate algorithm) on the server's clock: one decision for `n` units.
-- KEYS[1]: the limiter's key, holding the theoretical arrival time (TAT) in microseconds of
--          server time, as a decimal number; it expires when the bucket is full again.
-- ARGV[1]: the emission interval (period / rate) in microseconds (may be fractional)
-- ARGV[2]: burst (how many units may be admitted at once)
-- ARGV[3]: n (units asked for; 0 only looks)
-- Returns {allowed (0/1), remaining, retry_after_us (-1: none), reset_after_us}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then
  tat = tonumber(stored)
  if not tat then
    return redis.error_reply('NOTGCRA the key holds a value that is not a rate limiter state')
  end
  if tat < now then tat = now end
end
local tolerance = interval * burst
local function remaining(at)
  local r = math.floor((now - (at - tolerance)) / interval + 1e-9)
  if r < 0 then r = 0 end
  if r > burst then r = burst end
  return r
end
local new_tat = tat + n * interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, remaining(tat), math.ceil(allow_at - now), math.ceil(tat - now)}
end
if n > 0 then
  local ttl_ms = math.ceil((new_tat - now) / 1000)
  if ttl_ms < 1 then ttl_ms = 1 end
  redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX', ttl_ms)
end
return {1, remaining(new_tat), -1, math.ceil(new_tat - now)}
