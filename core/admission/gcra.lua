-- GCRA in one atomic step; the same algorithm as gcra_step() in gcra.py, keep them in step.
-- One call decides one bucket per key: KEYS[i] is a bucket key, and ARGV holds four values per
-- key, from ARGV[4*i-3]: the emission interval T in seconds, the burst, the cost, and '1' to
-- lease, taking as many whole tokens up to the cost as the bucket holds (gcra_grant() in
-- gcra.py) instead of all or nothing ('0').
-- Returns five values per key, one key after the other: allowed (1|0), remaining, reset_after,
-- retry_after, tokens taken; the times are strings because Redis would truncate Lua numbers to
-- integers.
-- The clock is the server's TIME so that every instance sharing this Redis agrees on "now".

-- Float slack for ~1.7e9-second timestamps; the same EPSILON as gcra.py.
local epsilon = 1e-6

local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000

local function seconds(value)
  return string.format('%.17g', value)
end

local reply = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[4 * i - 3])
  local burst = tonumber(ARGV[4 * i - 2])
  local cost = tonumber(ARGV[4 * i - 1])
  local capacity = burst * interval

  local function remaining(backlog)
    return math.max(0, math.floor((capacity - backlog + epsilon) / interval))
  end

  local backlog_end = now
  local stored = redis.call('GET', key)
  if stored then
    local tat = tonumber(stored)
    if tat > now then
      backlog_end = tat
    end
  end

  if ARGV[4 * i] == '1' then
    cost = math.max(1, math.min(cost, remaining(backlog_end - now)))
  end

  local new_tat = backlog_end + cost * interval
  local allow_at = new_tat - capacity
  local n = #reply
  if allow_at <= now + epsilon then
    local reset_after = new_tat - now
    -- The key expires when its bucket is full again: an absent key means a full bucket.
    redis.call('SET', key, seconds(new_tat), 'PX', math.ceil(reset_after * 1000))
    reply[n + 1] = 1
    reply[n + 2] = remaining(reset_after)
    reply[n + 3] = seconds(reset_after)
    reply[n + 4] = '0'
    reply[n + 5] = cost
  else
    reply[n + 1] = 0
    reply[n + 2] = remaining(backlog_end - now)
    reply[n + 3] = seconds(backlog_end - now)
    reply[n + 4] = seconds(allow_at - now)
    reply[n + 5] = 0
  end
end
return reply
