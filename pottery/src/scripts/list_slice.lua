-- Python's list[start:stop:step] for a negative step, with CPython's slice.indices rules.
-- KEYS[1]: the list. ARGV[1]: start ('' when omitted). ARGV[2]: stop ('' when omitted).
-- ARGV[3]: '1' when the stop is inclusive (Rust's ..=). ARGV[4]: '1' when the start is
-- exclusive. ARGV[5]: the step (negative).
-- Returns the elements, in slice order.
local len = redis.call('LLEN', KEYS[1])
local step = tonumber(ARGV[5])
local lower, upper = -1, len - 1
local function adjust(text, default)
  if text == '' then
    return default
  end
  local i = tonumber(text)
  if i < 0 then
    i = i + len
    if i < lower then
      i = lower
    end
  elseif i > upper then
    i = upper
  end
  return i
end
local start = adjust(ARGV[1], upper)
local stop = adjust(ARGV[2], lower)
if ARGV[4] == '1' then
  start = start - 1
end
if ARGV[3] == '1' then
  stop = stop - 1
end
if start <= stop then
  return {}
end
-- Elements stop+1 .. start, read once, picked from the end.
local span = redis.call('LRANGE', KEYS[1], stop + 1, start)
local out = {}
local i = #span
while i >= 1 do
  out[#out + 1] = span[i]
  i = i + step
end
return out
