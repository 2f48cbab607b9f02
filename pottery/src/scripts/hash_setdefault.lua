-- Python's dict.setdefault: the value at a field, storing the default first if there is none.
-- KEYS[1]: the hash. ARGV[1]: field. ARGV[2]: default.
-- Returns {1, default} when it stored the default, {0, value} when the field had a value.
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  return {1, ARGV[2]}
end
return {0, redis.call('HGET', KEYS[1], ARGV[1])}
