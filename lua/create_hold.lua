-- lua/create_hold.lua: hold `qty` best-available seats in one block for `ttl_ms`, or nothing.
-- With mode 'check' it only answers whether (and which seats) it would hold.
-- Reclaims the block's expired holds first. Policy: engine/best_available.py (the spec).
--!include _block
--!include _pick
-- ARGV[1] hold_id  ARGV[2] qty  ARGV[3] ttl_ms  ARGV[4] owner (user id, '' for a guest)
-- ARGV[5] client (rate/limit identity)  ARGV[6] allow_split ('1' | '0')  ARGV[7] mode
-- ('hold' | 'check')  ARGV[8] reclaim_limit  (tombstones are left to the sweeper)
-- Returns {1, expires_at_ms, price_cents, seat_index, ...}   new hold (check: expires 0)
--       | {2, expires_at_ms, price_cents, seat_index, ...}   hold_id exists (replayed call)
--       | {0, reason, available, price_cents}  reason: 'no_block' | 'not_on_sale'
--                                                     | 'sold_out' | 'no_adjacent'
-- Seat indices are 0-based offsets into KEYS[2]; GA holds return none.
local hold_id, qty, ttl_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local m = redis.call('HMGET', META, 'kind', 'capacity', 'rows', 'seats_per_row',
  'price_cents', 'active', 'held', 'sold')
if not m[1] then return {0, 'no_block', 0, 0} end
if m[6] ~= '1' then return {0, 'not_on_sale', 0, 0} end
local kind, capacity, rows, spr = m[1], tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
local price = tonumber(m[5])

local now = now_ms()
local freed = reclaim(now, tonumber(ARGV[8]), nil)

local existing = redis.call('HGET', RECORDS, hold_id)
if existing then
  local rec = cjson.decode(existing)
  local reply = {2, rec.expires_ms, rec.price_cents}
  for _, idx in ipairs(rec.seats or {}) do reply[#reply + 1] = idx end
  return reply
end

local available = capacity - (tonumber(m[7]) - freed) - tonumber(m[8])
if available < qty then return {0, 'sold_out', available, price} end

local picked = {}
if kind == 'reserved' then
  local seats = redis.call('GET', SEATS)
  picked = pick_adjacent(seats, rows, spr, qty)
  if picked == nil and ARGV[6] == '1' then picked = pick_split(seats, rows, spr, qty) end
  if picked == nil then return {0, 'no_adjacent', available, price} end
end

local expires = 0
if ARGV[7] == 'hold' then
  expires = now + ttl_ms
  if kind == 'reserved' then set_seats(picked, 'H') end
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
