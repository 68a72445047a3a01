-- lua/create_hold.lua: hold `qty` best-available seats in one block for `ttl_ms`, or the
-- seats the fan picked, or wheelchair spaces (with their companion seats), all or nothing.
-- With mode 'check' it only answers whether (and which seats) it would hold. Everything a
-- hold needs happens here, in one call on the block's slot: reclaim expired holds, replay a
-- retried request, the client's rate limit and active-hold cap, best available, the picked
-- seats or the accessible pairs, write.
-- Policy: engine/best_available.py and amphi/accessible.py (the specs).
--!include _block
--!include _pick
-- ARGV[1] hold_id  ARGV[2] qty  ARGV[3] ttl_ms  ARGV[4] owner (user id, '' for a guest)
-- ARGV[5] client (rate/limit identity)  ARGV[6] allow_split ('1' | '0')  ARGV[7] mode
-- ('hold' | 'check')  ARGV[8] reclaim_limit  ARGV[9] max active holds of a client in this
-- block  ARGV[10] rate limit, requests a minute (0: off)  ARGV[11] '1' if hold_id may exist
-- already (derived from an Idempotency-Key), '0' for a fresh random id  ARGV[12] with '1':
-- the id the same key had in the previous hour, so a retry across the hour replays too;
-- with '0': ''  ARGV[13] the picked seat indices, ascending, comma-separated ('' or absent:
-- best available); qty is their number  ARGV[14] wheelchair spaces asked for ('' or '0': a
-- general hold)  ARGV[15] '1': each with its companion seat, '0': spaces alone; qty is the
-- seats that makes
-- Withheld seats ('W', 'C': see _block.lua) are never a general hold's: its availability is
-- capacity - held - sold - withheld.
-- Returns {1, expires_at_ms, price_cents, seat_index, ...}   new hold (check: expires 0)
--       | {2, expires_at_ms, price_cents, seat_index, ...}   hold_id exists (a retry)
--       | {3, expires_at_ms, price_cents, seat_index, ...}   ARGV[12] exists (a retry)
--       | {0, reason, n, price_cents}  reason: 'no_block' | 'not_on_sale' | 'sold_out' (n:
--         seats available) | 'no_adjacent' (n: available) | 'rate_limited' (n: retry ms)
--         | 'too_many_holds' (n: the hold TTL, by when one has ended at the latest)
--         | 'idempotency_mismatch'
--       | {0, 'seats_unavailable', n, price_cents, seat_index, ...}  the n picked seats that
--         are not free (held, sold, withheld, or outside the block)
--       | {0, 'no_accessible', n, price_cents}  fewer than ARGV[14] usable pairs (n of them)
-- Seat indices are 0-based offsets into KEYS[2]; GA holds return none.
local hold_id, qty, ttl_ms, client = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[5]
local split, holding = ARGV[6] == '1', ARGV[7] == 'hold'
local picks = ARGV[13] or ''
local spaces, companions = tonumber(ARGV[14] or '') or 0, ARGV[15] == '1'
-- rows is capacity / seats_per_row (load_block checks it): one field fewer to read
local m = redis.call('HMGET', META, 'kind', 'capacity', 'seats_per_row', 'price_cents',
  'active', 'held', 'sold', 'due_ms', 'withheld')
if not m[1] then return {0, 'no_block', 0, 0} end
if m[5] ~= '1' then return {0, 'not_on_sale', 0, 0} end
local kind, capacity, spr = m[1], tonumber(m[2]), tonumber(m[3])
local price = tonumber(m[4])

local now, now_s = now_ms()
local freed, due = reclaim(now, ARGV[8], nil, m[8])
local held = tonumber(m[6]) - freed  -- as it is after the reclaim

local field = 'c:' .. client
-- One read for the client's entry and, for a keyed request, the hold a retry would find
-- under this hour's id or the last hour's.
local found = redis.call('HMGET', RECORDS, field, hold_id, ARGV[12])
if ARGV[11] == '1' then
  local code, existing = 2, found[2]
  if not existing then code, existing = 3, found[3] end
  if existing then
    local rec = cjson.decode(existing)
    if rec.qty ~= qty or (rec.split == 1) ~= split or (rec.picked == 1) ~= (picks ~= '')
        or (picks ~= '' and table.concat(rec.seats or {}, ',') ~= picks)
        or (rec.acc or 0) ~= spaces then
      return {0, 'idempotency_mismatch', 0, price}
    end
    local reply = {code, rec.expires_ms, rec.price_cents}
    for _, idx in ipairs(rec.seats or {}) do reply[#reply + 1] = idx end
    return reply
  end
end

local client_holds, tat, limited = 0, 0, false  -- limited: the request used the rate limit
local refusal, n  -- why not, and its number (see Returns)
if holding then
  client_holds, tat = client_state(found[1])
  local per_minute = tonumber(ARGV[10])
  if per_minute > 0 then
    -- GCRA in whole µs: stored as the integer it is, and a burst of per_minute still fits
    local interval, now_us = math.max(math.floor(60000000 / per_minute), 1), now * 1000
    if tat < now_us then tat = now_us end
    if tat + interval - now_us > 60000000 then
      return {0, 'rate_limited', math.ceil((tat + interval - now_us - 60000000) / 1000), price}
    end
    tat, limited = tat + interval, true
  end
  if client_holds >= tonumber(ARGV[9]) then
    refusal, n = 'too_many_holds', ttl_ms  -- by then, at the latest, one has ended
  end
end

local available = capacity - held - tonumber(m[7]) - tonumber(m[9] or '0')

local picked, gone, withheld = {}, nil, 0
if spaces > 0 then
  if not refusal then
    local access, found = redis.call('HGET', META, 'access'), 0
    picked = nil  -- a block without pairs has none to give
    if access then
      picked, found, withheld = pick_accessible(redis.call('GET', SEATS), access, spaces,
        companions)
    end
    if not picked then refusal, n = 'no_accessible', found end
  end
elseif picks ~= '' then
  if not refusal then
    -- the fan's own choice: taken whole or not at all, and it may strand a seat
    -- (a general-admission block has no seats to pick: every pick is reported gone)
    local seats, byte = kind == 'reserved' and redis.call('GET', SEATS) or '', string.byte
    gone = {}
    for idx in string.gmatch(picks, '%d+') do
      picked[#picked + 1] = tonumber(idx)
      if byte(seats, picked[#picked] + 1) ~= 48 then gone[#gone + 1] = idx end
    end
    if #gone > 0 then refusal, n = 'seats_unavailable', #gone end
  end
elseif not refusal and available < qty then
  refusal, n = 'sold_out', available
elseif not refusal and kind == 'reserved' then
  local seats = redis.call('GET', SEATS)
  picked = pick_adjacent(seats, capacity / spr, spr, qty)
  if picked == nil and split then picked = pick_split(seats, capacity / spr, spr, qty) end
  if picked == nil then refusal, n = 'no_adjacent', available end
end
if refusal then
  -- the rate it used stays used: hammering a sold-out section is limited too
  if limited then redis.call('HSET', RECORDS, field, client_entry(client_holds, tat, now)) end
  local reply = {0, refusal, n, price}
  for _, idx in ipairs(gone or {}) do reply[#reply + 1] = idx end
  return reply
end

local expires = 0
if holding then
  expires = now + ttl_ms
  local expires_s = string.format('%d', expires)
  if kind == 'reserved' then set_seats(picked, 'H') end
  if not due or expires < tonumber(due) then due = expires_s end
  redis.call('HSET', META, 'held', string.format('%d', held + qty), 'due_ms', due)
  if withheld > 0 then redis.call('HINCRBY', META, 'withheld', -withheld) end
  -- The record as cjson would write it, minus cjson's %.17g number formatting (see Speed
  -- in _block.lua). engine/holds.py parse_record and the other scripts read it.
  local seats_json = ''
  if kind == 'reserved' then
    seats_json = ',"seats":[' .. string.format(string.rep('%d,', #picked - 1) .. '%d',
      unpack(picked)) .. ']'
  end
  redis.call('HSET', RECORDS, hold_id, string.format(
    '{"status":"active","owner":%s,"client":%s,"qty":%d,"price_cents":%d,"created_ms":%s,'
      .. '"expires_ms":%s%s%s%s%s}',
    cjson.encode(ARGV[4]), cjson.encode(client), qty, price, now_s, expires_s, seats_json,
    split and ',"split":1' or '', picks ~= '' and ',"picked":1' or '',
    spaces > 0 and string.format(',"acc":%d', spaces) or ''),
    field, client_entry(client_holds + 1, tat, now))
  redis.call('ZADD', HOLDS, expires_s, hold_id)
end

local reply = {1, expires, price}
for _, idx in ipairs(picked) do reply[#reply + 1] = idx end
return reply
