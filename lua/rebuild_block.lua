-- lua/rebuild_block.lua: make a block agree with the ledger (`amphi reconcile --fix`), in one
-- atomic step so that sales may go on meanwhile. Sold seats are the ledger's tickets plus the
-- seats of every sale in KEYS[6] whose order the ledger has not settled yet (a payment being
-- finalised right now). Active holds that have not expired keep their seats unless a sold
-- seat or an earlier hold has them; the others end. Counters (held, sold, each client's
-- active holds) are recomputed from what remains. A missing block (after a flush) is created.
-- Accessible seating: the free seats of the pairs are withheld again ('W', 'C') unless the
-- block released them, or the box office did, or the rest of the block is sold out.
--!include _block
-- KEYS[6] {blk}:sales   hash order_id -> JSON {mode, seats, qty} (see sell_hold.lua)
-- ARGV[1] kind ('reserved' | 'ga')  ARGV[2] capacity  ARGV[3] rows  ARGV[4] seats_per_row
-- ARGV[5] price_cents  ARGV[6] active ('1' | '0')
-- ARGV[7] the ledger's sold seats: reserved, comma-separated seat indices; ga, a count
-- ARGV[8] comma-separated ids of orders the ledger has settled (completed, refunded...):
--         their sales no longer hold seats, their tickets (ARGV[7]) do
-- ARGV[9] accessible pairs, meta's `access` ('' none)  ARGV[10] '1': the box office
--         released them to general sale
-- Returns {1, seats_changed, holds_ended, sold, held}
--       | {0, 'geometry_mismatch' | 'bad_geometry' | 'bad_kind' | 'bad_sold'}
local SALES = KEYS[6]
local kind, capacity, rows, spr = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local reserved = kind == 'reserved'

if kind ~= 'reserved' and kind ~= 'ga' then return {0, 'bad_kind'} end
if not (capacity and rows and spr) or capacity < 1 or (reserved and rows * spr ~= capacity) then
  return {0, 'bad_geometry'}
end
local current = redis.call('HMGET', META, 'kind', 'capacity', 'rows', 'seats_per_row')
if current[1] and (current[1] ~= kind or tonumber(current[2]) ~= capacity
    or tonumber(current[3]) ~= rows or tonumber(current[4]) ~= spr) then
  return {0, 'geometry_mismatch'}
end
local now = now_ms()

-- state[i] ('0', 'H' or 'S') of seat index i - 1; GA counts instead.
local state, sold, held = {}, 0, 0
if reserved then
  for i = 1, capacity do state[i] = '0' end
end
local function sell(i)
  if not i or i ~= math.floor(i) or i < 0 or i >= capacity then return false end
  if state[i + 1] ~= 'S' then
    state[i + 1] = 'S'
    sold = sold + 1
  end
  return true
end

if reserved then
  for token in string.gmatch(ARGV[7], '[^,]+') do
    if not sell(tonumber(token)) then return {0, 'bad_sold'} end
  end
else
  sold = tonumber(ARGV[7] ~= '' and ARGV[7] or '0')
  if not sold or sold ~= math.floor(sold) or sold < 0 then return {0, 'bad_sold'} end
end

local settled = {}
for id in string.gmatch(ARGV[8], '[^,]+') do settled[id] = true end
local sales = redis.call('HGETALL', SALES)
for i = 1, #sales, 2 do
  if not settled[sales[i]] then
    local sale = cjson.decode(sales[i + 1])
    if reserved then
      for _, idx in ipairs(sale.seats) do sell(idx) end
    else
      sold = sold + sale.qty
    end
  end
end

-- Holds, oldest first: the first to take a seat keeps it.
local holds_ended, expired, clients = 0, 0, {}
local active = redis.call('ZRANGE', HOLDS, 0, -1, 'WITHSCORES')
for i = 1, #active, 2 do
  local hold_id, expires = active[i], tonumber(active[i + 1])
  local raw = redis.call('HGET', RECORDS, hold_id)
  if not raw then
    redis.call('ZREM', HOLDS, hold_id)
  else
    local rec = cjson.decode(raw)
    local keep = expires > now
    if keep and reserved then
      for _, idx in ipairs(rec.seats or {}) do
        if state[idx + 1] ~= '0' then keep = false end
      end
    elseif keep then
      keep = sold + held + rec.qty <= capacity
    end
    if keep then
      for _, idx in ipairs(rec.seats or {}) do state[idx + 1] = 'H' end
      held = held + rec.qty
      clients[rec.client] = (clients[rec.client] or 0) + 1
    else
      local status = expires > now and 'released' or 'expired'
      retire(hold_id, rec, status, now)
      holds_ended = holds_ended + 1
      if status == 'expired' then expired = expired + 1 end
    end
  end
end

local changed, access, withheld = 0, reserved and ARGV[9] or '', 0
local released = ARGV[10] == '1' or redis.call('HGET', META, 'access_released') == '1'
if reserved then
  local map = table.concat(state)
  if access ~= '' and not released then
    map, withheld = withhold(map, access)
    if general_sold_out(map, access) then
      map, withheld, released = string.gsub(map, '[WC]', '0'), 0, true
    end
  end
  local before = redis.call('GET', SEATS) or ''
  for i = 1, capacity do
    if string.byte(before, i) ~= string.byte(map, i) then changed = changed + 1 end
  end
  if changed > 0 then redis.call('SET', SEATS, map) end
end

-- Each client's active-hold count, from the holds that remain; its rate limit stays.
local tats, cursor = {}, '0'
repeat
  local scan = redis.call('HSCAN', RECORDS, cursor, 'MATCH', 'c:*', 'COUNT', 1000)
  cursor = scan[1]
  for i = 1, #scan[2], 2 do
    local _, tat = client_state(scan[2][i + 1])
    tats[string.sub(scan[2][i], 3)] = tat
  end
until cursor == '0'
for client in pairs(clients) do tats[client] = tats[client] or 0 end
for client, tat in pairs(tats) do
  local entry = client_entry(clients[client] or 0, tat, now)
  if entry then
    redis.call('HSET', RECORDS, 'c:' .. client, entry)
  else
    redis.call('HDEL', RECORDS, 'c:' .. client)
  end
end
redis.call('HSET', META, 'kind', kind, 'capacity', capacity, 'rows', rows,
  'seats_per_row', spr, 'price_cents', ARGV[5], 'active', ARGV[6], 'held', held, 'sold', sold,
  'withheld', withheld)
if access ~= '' then
  redis.call('HSET', META, 'access', access)
else
  redis.call('HDEL', META, 'access')
end
if released then redis.call('HSET', META, 'access_released', '1') end
-- due_ms unknown: the next hold reads HOLDS and sets it again (see _block.lua).
redis.call('HDEL', META, 'due_ms')
-- Holds found past their expiry end as a reclaim would have ended them: counted as expired.
if expired > 0 then redis.call('HINCRBY', META, 'expired', expired) end
return {1, changed, holds_ended, sold, held}
