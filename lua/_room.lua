-- lua/_room.lua: the prelude of the waiting-room scripts (amphi/keys.py RoomKeys says
-- what each key holds). KEYS[1] config  KEYS[2] places  KEYS[3] prequeue  KEYS[4] counters
-- KEYS[5] turns: one hash tag, one slot.
local CONFIG, PLACES, PREQUEUE, COUNTERS, TURNS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- At the on-sale start the pre-queue's order is fixed (the random scores drawn at join) and
-- later arrivals are numbered after it. Done once, by whichever script runs first after it.
local function rank_if_started(cfg, now)
  if cfg.ranked == '1' or now < tonumber(cfg.on_sale_ms) then return end
  redis.call('HSET', COUNTERS, 'last', redis.call('ZCARD', PREQUEUE))
  redis.call('HSET', CONFIG, 'ranked', '1', 'last_ms', cfg.on_sale_ms)  -- admission accrues from the start
  cfg.ranked, cfg.last_ms = '1', cfg.on_sale_ms
end

local function config()
  local raw = redis.call('HGETALL', CONFIG)
  if #raw == 0 then return nil end
  local cfg = {}
  for i = 1, #raw, 2 do cfg[raw[i]] = raw[i + 1] end
  return cfg
end
