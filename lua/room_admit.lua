-- lua/room_admit.lua: the room's state, after advancing admission to now. While the room is
-- open and the on-sale has started, "admitted up to" moves by the rate (admissions per
-- minute, accrued since the last call, at most a second's worth carried over an idle spell)
-- and, if there is one, only as far as the cap on active shoppers allows. Each admitted
-- position gets a turn (a slot in TURNS until it ends). Safe to call from every API process
-- at any pace: the pace comes from the clock, not from the callers.
--!include _room
-- ARGV: none.
-- Returns {state, admitted, last, active, epoch, on_sale_ms, now, rate_per_minute,
--          max_active, turn_seconds, prequeue_size, turns_expired}, or {'none'} without a
--          room (turns_expired: turns that ran out, ever: fans admitted who did not buy)
local now = now_ms()
local cfg = config()
if not cfg then return {'none'} end
rank_if_started(cfg, now)
local expired = redis.call('ZREMRANGEBYSCORE', TURNS, '-inf', now)
if expired > 0 then redis.call('HINCRBY', CONFIG, 'turns_expired', expired) end
local admitted = tonumber(redis.call('HGET', COUNTERS, 'admitted') or '0')
local last = tonumber(redis.call('HGET', COUNTERS, 'last') or '0')
local rate, cap = tonumber(cfg.rate_per_minute), tonumber(cfg.max_active)
local turn_ms = tonumber(cfg.turn_seconds) * 1000
if cfg.state == 'open' and cfg.ranked == '1' then
  local allowed = last - admitted
  local carry = tonumber(cfg.carry or '0')
  if rate > 0 then
    local since = math.max(0, now - tonumber(cfg.last_ms or now))
    carry = math.min(carry + rate * since / 60000, math.max(1, rate / 60))
    allowed = math.min(allowed, math.floor(carry))
  end
  if cap > 0 then allowed = math.min(allowed, cap - redis.call('ZCARD', TURNS)) end
  if allowed > 0 then
    for position = admitted + 1, admitted + allowed do
      redis.call('ZADD', TURNS, now + turn_ms, position)
    end
    admitted = admitted + allowed
    redis.call('HSET', COUNTERS, 'admitted', admitted)
    carry = carry - allowed
  end
  redis.call('HSET', CONFIG, 'carry', tostring(math.max(0, carry)), 'last_ms', now)
elseif cfg.ranked == '1' then
  redis.call('HSET', CONFIG, 'last_ms', now)  -- paused: nothing accrues meanwhile
end
return {cfg.state, admitted, last, redis.call('ZCARD', TURNS), tonumber(cfg.epoch), tonumber(cfg.on_sale_ms),
        now, rate, cap, tonumber(cfg.turn_seconds), redis.call('ZCARD', PREQUEUE),
        tonumber(cfg.turns_expired or '0') + expired}
