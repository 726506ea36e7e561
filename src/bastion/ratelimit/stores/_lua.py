"""The Lua scripts that make each Redis decision atomic and one round trip.

Each script runs the same admission rule as its sans-I/O module in `algorithms/`, in the same
order of double-precision operations, and returns what that module's `outcome` needs: one
integer where one number suffices (the number after the decision, or -1 minus it when
refused), else one space-separated string (one bulk reply parses faster than an array of
integers). The cost argument is negative for a peek, which counts nothing. Numbers
that must survive a round trip through a string are written with %d, never with Lua's
default %.14g, which would round microsecond timestamps and token levels. Expiry times carry a margin
(the last argument, in milliseconds) beyond the moment the state stops mattering, because
Redis expires keys by its own clock while decisions use the callers' clocks.
"""

from typing import Final

FIXED_WINDOW: Final = """
local cost, limit = tonumber(ARGV[1]), tonumber(ARGV[3])
if cost > 0 then
  -- Count first, as the common case is admission: one command, plus the expiry on a new key.
  local count = redis.call('INCRBY', KEYS[1], cost)
  if count == cost then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[4])) end
  if count <= limit then return count end
  return -1 - redis.call('DECRBY', KEYS[1], cost)
end
cost = -cost
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count + cost <= limit then return count end
return -1 - count
"""

SLIDING_LOG: Final = """
local now, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local window, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local consume = cost > 0
if not consume then cost = -cost end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count + cost <= limit then
  allowed = 1
  if consume then
    local stamp = string.format('%d', now)
    for i = 1, cost do
      redis.call('ZADD', KEYS[1], stamp, ARGV[3] .. ':' .. i)
    end
    count = count + cost
    redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + tonumber(ARGV[6]))
  end
end
local kth, newest = -1, -1
local need = count + cost - limit
if allowed == 0 and need > 0 and need <= count then
  kth = tonumber(redis.call('ZRANGE', KEYS[1], need - 1, need - 1, 'WITHSCORES')[2])
end
if count > 0 then
  newest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
end
return allowed .. ' ' .. count .. ' ' .. string.format('%d %d', kth, newest)
"""

SLIDING_WINDOW: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
local cost, elapsed = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local consume = cost > 0
if not consume then cost = -cost end
local estimate = math.floor(prev * (window - elapsed) / window) + cur
local allowed = 0
if estimate + cost <= limit then
  allowed = 1
  if consume then
    cur = redis.call('INCRBY', KEYS[1], cost)
    redis.call('PEXPIRE', KEYS[1], math.ceil(2 * window / 1000) + tonumber(ARGV[5]))
  end
end
return allowed .. ' ' .. prev .. ' ' .. cur
"""

TOKEN_BUCKET: Final = """
local now, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local capacity, limit, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local consume = cost > 0
if not consume then cost = -cost end
local full = capacity * window
local level, stamp = full, now
local saved = redis.call('HMGET', KEYS[1], 'level', 'stamp')
if saved[1] then
  level, stamp = tonumber(saved[1]), tonumber(saved[2])
  if now > stamp then
    local elapsed = math.min(now - stamp, math.floor(full / limit) + 1)
    level = math.min(full, level + elapsed * limit)
  end
end
if level < cost * window then return -1 - level end
if consume then
  level = level - cost * window
  if now > stamp then stamp = now end
  redis.call('HSET', KEYS[1], 'level', string.format('%d', level),
             'stamp', string.format('%d', stamp))
  redis.call('PEXPIRE', KEYS[1], math.ceil((full - level) / limit / 1000) + tonumber(ARGV[6]))
end
return level
"""  # noqa: S105 - a Lua script; the "TOKEN" in its name is not a password

GCRA: Final = """
local now, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
local interval, burst = tonumber(ARGV[3]), tonumber(ARGV[4])
local consume = cost > 0
if not consume then cost = -cost end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local candidate = tat + cost * interval
if candidate - now > burst * interval then return -1 - tat end
if consume then
  tat = candidate
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX',
             math.ceil((tat - now) / 1000) + tonumber(ARGV[5]))
end
return tat
"""
