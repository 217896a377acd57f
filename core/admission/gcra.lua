-- GCRA in one atomic step; the same algorithm as gcra_step() in gcra.py, keep them in step.
-- KEYS[1]: the bucket key. ARGV[1]: emission interval T in seconds, ARGV[2]: burst,
-- ARGV[3]: cost, ARGV[4] (optional): '1' to lease, taking as many whole tokens up to the cost
-- as the bucket holds (gcra_grant() in gcra.py) instead of all or nothing.
-- Returns {allowed (1|0), remaining, reset_after, retry_after, tokens taken}; the times are
-- strings because Redis would truncate Lua numbers to integers.
-- The clock is the server's TIME so that every instance sharing this Redis agrees on "now".

local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
-- Float slack for ~1.7e9-second timestamps; the same EPSILON as gcra.py.
local epsilon = 1e-6

local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local capacity = burst * interval

local backlog_end = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local tat = tonumber(stored)
  if tat > now then
    backlog_end = tat
  end
end

local function remaining(backlog)
  return math.max(0, math.floor((capacity - backlog + epsilon) / interval))
end

local function seconds(value)
  return string.format('%.17g', value)
end

if ARGV[4] == '1' then
  cost = math.max(1, math.min(cost, remaining(backlog_end - now)))
end

local new_tat = backlog_end + cost * interval
local allow_at = new_tat - capacity
if allow_at <= now + epsilon then
  local reset_after = new_tat - now
  -- The key expires when its bucket is full again: an absent key means a full bucket.
  redis.call('SET', KEYS[1], seconds(new_tat), 'PX', math.ceil(reset_after * 1000))
  return {1, remaining(reset_after), seconds(reset_after), '0', cost}
end
return {0, remaining(backlog_end - now), seconds(backlog_end - now), seconds(allow_at - now), 0}
