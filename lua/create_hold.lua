-- lua/create_hold.lua: hold `qty` best-available seats in one block for `ttl_ms`, or nothing.
-- With mode 'check' it only answers whether (and which seats) it would hold.
-- Reclaims the block's expired holds first. Policy: engine/best_available.py (the spec).
--!include _block
-- ARGV[1] hold_id  ARGV[2] qty  ARGV[3] ttl_ms  ARGV[4] owner (user id, '' for a guest)
-- ARGV[5] client (rate/limit identity)  ARGV[6] allow_split ('1' | '0')  ARGV[7] mode
-- ('hold' | 'check')  ARGV[8] reclaim_limit  ARGV[9] tombstone_ms
-- Returns {1, expires_at_ms, price_cents, seat_index, ...}   new hold (check: expires 0)
--       | {2, expires_at_ms, price_cents, seat_index, ...}   hold_id exists (replayed call)
--       | {0, reason, available, price_cents}  reason: 'no_block' | 'not_on_sale'
--                                                     | 'sold_out' | 'no_adjacent'
-- Seat indices are 0-based offsets into KEYS[2]; GA holds return none.
local hold_id, qty, ttl_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local m = redis.call('HMGET', META, 'kind', 'capacity', 'rows', 'seats_per_row',
  'price_cents', 'active')
if not m[1] then return {0, 'no_block', 0, 0} end
if m[6] ~= '1' then return {0, 'not_on_sale', 0, 0} end
local kind, capacity, rows, spr = m[1], tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
local price = tonumber(m[5])

local now = now_ms()
reclaim(now, tonumber(ARGV[8]), tonumber(ARGV[9]))

local existing = redis.call('HGET', RECORDS, hold_id)
if existing then
  local rec = cjson.decode(existing)
  local reply = {2, rec.expires_ms, rec.price_cents}
  for _, idx in ipairs(rec.seats or {}) do reply[#reply + 1] = idx end
  return reply
end

local c = redis.call('HMGET', META, 'held', 'sold')
local available = capacity - tonumber(c[1]) - tonumber(c[2])
if available < qty then return {0, 'sold_out', available, price} end

-- Best run of qty adjacent free seats: non-stranding first, then front row, then centre.
local function pick_adjacent(seats)
  local need = string.rep('0', qty)
  local best_s, best_off, best_r
  local fb_s, fb_off, fb_r
  for r = 0, rows - 1 do
    local row = string.sub(seats, r * spr + 1, (r + 1) * spr)
    if string.find(row, need, 1, true) then
      local pos = 1
      while true do
        local a, b = string.find(row, '0+', pos)
        if not a then break end
        if b - a + 1 >= qty then
          local first, e = a - 1, b - qty  -- 0-based first seat and last possible start
          local ideal = (spr - qty) / 2
          local cands = {math.floor(ideal), math.ceil(ideal), first, first + 2, e - 2, e}
          for _, s in ipairs(cands) do
            if s < first then s = first elseif s > e then s = e end
            local off = math.abs(2 * s + qty - spr)
            if s - first == 1 or e - s == 1 then
              if fb_r == nil or (fb_r == r and (off < fb_off or (off == fb_off and s < fb_s))) then
                fb_s, fb_off, fb_r = s, off, r
              end
            elseif best_r == nil or off < best_off or (off == best_off and s < best_s) then
              best_s, best_off, best_r = s, off, r
            end
          end
        end
        pos = b + 1
      end
      if best_r then break end
    end
  end
  local r, s = best_r, best_s
  if r == nil then r, s = fb_r, fb_s end
  if r == nil then return nil end
  local picked = {}
  for i = 0, qty - 1 do picked[#picked + 1] = r * spr + s + i end
  return picked
end

-- Single seats when no row seats the party together: front row first, nearest the centre.
local function pick_split(seats)
  local picked = {}
  for r = 0, rows - 1 do
    local free = {}
    for o = 0, spr - 1 do
      if string.byte(seats, r * spr + o + 1) == 48 then free[#free + 1] = o end
    end
    table.sort(free, function(x, y)
      local dx, dy = math.abs(2 * x + 1 - spr), math.abs(2 * y + 1 - spr)
      if dx ~= dy then return dx < dy end
      return x < y
    end)
    for _, o in ipairs(free) do
      picked[#picked + 1] = r * spr + o
      if #picked == qty then
        table.sort(picked)
        return picked
      end
    end
  end
  return nil
end

local picked = {}
if kind == 'reserved' then
  local seats = redis.call('GET', SEATS)
  picked = pick_adjacent(seats)
  if picked == nil and ARGV[6] == '1' then picked = pick_split(seats) end
  if picked == nil then return {0, 'no_adjacent', available, price} end
end

local expires = 0
if ARGV[7] == 'hold' then
  expires = now + ttl_ms
  if kind == 'reserved' then
    local run_start, run_len = picked[1], 1
    for i = 2, #picked + 1 do
      if picked[i] and picked[i] == picked[i - 1] + 1 then
        run_len = run_len + 1
      else
        redis.call('SETRANGE', SEATS, run_start, string.rep('H', run_len))
        if picked[i] then run_start, run_len = picked[i], 1 end
      end
    end
  end
  redis.call('HINCRBY', META, 'held', qty)
  local rec = {status = 'active', owner = ARGV[4], client = ARGV[5], qty = qty,
    price_cents = price, created_ms = now, expires_ms = expires}
  if kind == 'reserved' then rec.seats = picked end
  redis.call('HSET', RECORDS, hold_id, cjson.encode(rec))
  redis.call('ZADD', HOLDS, expires, hold_id)
end

local reply = {1, expires, price}
for _, idx in ipairs(picked) do reply[#reply + 1] = idx end
return reply
