-- lua/sell_hold.lua: turn a paid order's hold into sold seats, exactly once per order.
-- The hold still active: its seats become sold. The hold gone (expired or released while
-- the fan paid): the same seats if all still free, else the best available adjacent seats
-- in the same block, else nothing (the order must be refunded). Never oversells. A hold it
-- finds expired is counted in the block's `expired` (see _block.lua), as reclaim counts.
-- An accessible order (its seats are wheelchair spaces) re-takes them even while withheld,
-- else other usable pairs, never general seats; a general order never takes withheld seats.
-- Seats sold, it puts the withheld seats on general sale if the rest of the block is sold
-- out (see _block.lua).
--!include _block
--!include _pick
-- KEYS[6] {blk}:sales   hash order_id -> JSON {mode, seats, qty}: what each order got
-- ARGV[1] order_id  ARGV[2] hold_id  ARGV[3] qty, or 0 to secure only: sell the hold if it
-- is still active, and never take other seats (the webhook's call, made without the
-- ledger; finalisation applies the late-payment policy)  ARGV[4] preferred seats (the
-- hold's, comma-separated indices; '' for GA)  ARGV[5] reclaim_limit  ARGV[6] tombstone_ms
-- Returns {1, mode, seat_index, ...}  mode: 'hold' (the hold's seats), 'same' (its seats,
--          re-taken after it ended), 'moved' (other seats in the block)
--       | {2, mode, seat_index, ...}  this order was sold before (a replayed job)
--       | {0, 'no_seats'} | {0, 'no_block'} | {0, 'hold_ended'} (qty 0, the hold had ended)
local SALES = KEYS[6]
local order_id, hold_id, qty = ARGV[1], ARGV[2], tonumber(ARGV[3])

local done = redis.call('HGET', SALES, order_id)
if done then
  local sale = cjson.decode(done)
  local reply = {2, sale.mode}
  for _, idx in ipairs(sale.seats) do reply[#reply + 1] = idx end
  return reply
end

local m = redis.call('HMGET', META, 'kind', 'capacity', 'rows', 'seats_per_row')
if not m[1] then return {0, 'no_block'} end
local kind, capacity, rows, spr = m[1], tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
local now = now_ms()
reclaim(now, ARGV[5], tonumber(ARGV[6]))

local mode, seats = nil, {}
local raw = redis.call('HGET', RECORDS, hold_id)
local rec = raw and cjson.decode(raw)
if rec and rec.status == 'active' and rec.expires_ms <= now then
  end_hold(hold_id, rec, 'expired', now)  -- expired, and not yet reclaimed (batch limit)
  redis.call('HINCRBY', META, 'expired', 1)
end
if rec and rec.status == 'active' then
  -- Still held (reclaim above ended it if it had expired): held seats become sold.
  mode = 'hold'
  seats = rec.seats or {}
  if #seats > 0 then set_seats(seats, 'S') end
  redis.call('HINCRBY', META, 'held', -rec.qty)
  rec.order_id = order_id
  retire(hold_id, rec, 'sold', now)
  qty = rec.qty
elseif qty == 0 then
  return {0, 'hold_ended'}
else
  local c = redis.call('HMGET', META, 'held', 'sold', 'withheld', 'access')
  -- an accessible order: its seats are wheelchair spaces (and companions) of the layout
  local role, spaces, companions = access_roles(c[4] or ''), 0, false
  for idx in string.gmatch(ARGV[4], '%d+') do
    local r = role[tonumber(idx) + 1]
    if r == 'W' then spaces = spaces + 1 elseif r == 'C' then companions = true end
  end
  local available = capacity - tonumber(c[1]) - tonumber(c[2]) - tonumber(c[3] or '0')
  if spaces == 0 and available < qty then return {0, 'no_seats'} end
  if kind == 'reserved' then
    local map, byte = redis.call('GET', SEATS), string.byte
    local preferred, all_free, taken = {}, true, 0  -- taken: withheld seats it gets
    for idx in string.gmatch(ARGV[4], '%d+') do
      local i = tonumber(idx)
      local b = byte(map, i + 1)
      preferred[#preferred + 1] = i
      if spaces > 0 and (b == 87 or b == 67) then
        taken = taken + 1
      elseif b ~= 48 then
        all_free = false
      end
    end
    if #preferred == qty and all_free then
      table.sort(preferred)
      mode, seats = 'same', preferred
    else
      if spaces > 0 then
        local picked, _, withheld = pick_accessible(map, c[4], spaces, companions)
        if picked and #picked == qty then seats, taken = picked, withheld end
      else
        seats = pick_adjacent(map, rows, spr, qty)
      end
      if seats == nil or #seats == 0 then return {0, 'no_seats'} end
      mode = 'moved'
    end
    set_seats(seats, 'S')
    if taken > 0 then redis.call('HINCRBY', META, 'withheld', -taken) end
  else
    mode = 'same'
  end
end
redis.call('HINCRBY', META, 'sold', qty)
redis.call('HSET', SALES, order_id, cjson.encode({mode = mode, seats = seats, qty = qty}))
if kind == 'reserved' then release_if_sold_out() end
local reply = {1, mode}
for _, idx in ipairs(seats) do reply[#reply + 1] = idx end
return reply
