-- setdefault that never overwrites: store ARGV[3] at field ARGV[2] only if the field is
-- absent, slide the expiry, and return what the field holds afterwards.
-- KEYS[1]: the cache hash. ARGV[1]: the expiry in ms (0: none).
redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3])
if tonumber(ARGV[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return redis.call('HGET', KEYS[1], ARGV[2])
