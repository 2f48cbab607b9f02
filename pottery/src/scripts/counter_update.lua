-- Add counts to a counter (a hash of decimal integers), all or nothing.
-- KEYS[1]: the hash. ARGV: field1, delta1, field2, delta2, ... (each field once; each delta a
-- canonical decimal i64).
-- Every field is checked before the first write, since an HINCRBY that fails midway would leave
-- the earlier ones applied: the stored value must be an integer HINCRBY accepts (canonical
-- decimal: no leading zero, no sign on 0, within i64), and value + delta must stay within i64.
-- The sum is checked on decimal digits, as Lua numbers are doubles and cannot hold every i64.
-- Returns {1} when every count was added, or {0, field, stored value, reason} when nothing was
-- written (reason: 'integer' for a value that is not one, 'overflow' for a sum out of range).
local MAX = '9223372036854775807'
local MIN = '9223372036854775808' -- the magnitude of i64::MIN

-- Whether the digit string `mag` (no sign, no leading zero) is at most `limit`.
local function within(mag, limit)
  return #mag < #limit or (#mag == #limit and mag <= limit)
end

local function canonical(v)
  if v == '0' then
    return true
  end
  local sign, digits = string.match(v, '^(%-?)([1-9]%d*)$')
  if not digits then
    return false
  end
  return within(digits, sign == '-' and MIN or MAX)
end

-- The sum of two digit strings.
local function add_digits(a, b)
  local out, carry = {}, 0
  local i, j = #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local s = carry
    if i > 0 then
      s = s + string.byte(a, i) - 48
      i = i - 1
    end
    if j > 0 then
      s = s + string.byte(b, j) - 48
      j = j - 1
    end
    table.insert(out, 1, string.char(48 + s % 10))
    carry = math.floor(s / 10)
  end
  return table.concat(out)
end

-- Whether v + d fits an i64 (both canonical).
local function fits(v, d)
  local vneg, dneg = string.sub(v, 1, 1) == '-', string.sub(d, 1, 1) == '-'
  if v == '0' or d == '0' or vneg ~= dneg then
    return true
  end
  local a = vneg and string.sub(v, 2) or v
  local b = dneg and string.sub(d, 2) or d
  return within(add_digits(a, b), vneg and MIN or MAX)
end

for i = 1, #ARGV, 2 do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    if not canonical(v) then
      return {0, ARGV[i], v, 'integer'}
    end
    if not fits(v, ARGV[i + 1]) then
      return {0, ARGV[i], v, 'overflow'}
    end
  end
end
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return {1}
