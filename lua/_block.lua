-- lua/_block.lua: shared prelude of the block scripts, inlined by engine/scripts.py where a
-- script says `--!include _block`. Every block script takes the same five keys:
-- KEYS[1] {blk}:meta     hash kind, capacity, rows, seats_per_row, price_cents, active, held,
--                        sold, expired (holds that ever expired in this block, for metrics:
--                        reclaim adds its batch in one HINCRBY, release_hold and sell_hold
--                        the one they find past due; absent until the first), clients_scan
--                        (the sweeper's HSCAN cursor over the client entries of KEYS[4]),
--                        due_ms (no hold in KEYS[3] expires before it, so create_hold skips
--                        reclaim until then; written with each new hold, absent: unknown).
--                        Accessible seating (reserved blocks that have it; amphi/accessible.py):
--                        access ('space:companion,...' seat indices, in the order holds get
--                        them), withheld (seats now 'W' or 'C'; absent: 0), access_released
--                        ('1' once they joined general sale: the block sold out around them,
--                        or the box office released them; one-way).
--                        A few fields: Redis keeps it a listpack that one HMGET reads cheaply
-- KEYS[2] {blk}:seats    string, one byte a seat: '0' free, 'H' held, 'S' sold, 'W' a free
--                        wheelchair space and 'C' a free companion seat, both withheld from
--                        general sale (reserved only)
-- KEYS[3] {blk}:holds    zset hold_id -> expires_at_ms, active holds only
-- KEYS[4] {blk}:records  hash, the block's records by id:
--                        hold_id -> JSON record (active holds and recent tombstones);
--                        'c:<client>' -> '<active holds> <tat>', the client's admission state:
--                        its active holds (the cap) and its rate limiter's theoretical
--                        arrival time (µs, GCRA; 0 when never limited). Beside the holds
--                        because hold records are longer than Redis's listpack limit: the
--                        hash is a hashtable from its first hold, so a lookup costs the same
--                        for 10 fans or 60,000, and the hold's one HMGET and one HSET here
--                        read and write the client's entry too. An entry that limits
--                        nothing (no hold, tat passed) is dropped by retire or the sweeper
-- KEYS[5] {blk}:ended    zset hold_id -> ended_at_ms, so tombstones can be trimmed
-- Speed: a Lua number handed to redis.call (or cjson) is formatted with a %.17g snprintf,
-- about as dear as a small command, so the hot path hands over strings: ARGV's, TIME's, or
-- string.format('%d') (a quarter of the cost).
local META, SEATS, HOLDS, RECORDS, ENDED = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

-- Redis's clock in ms, as a number and as its decimal string.
local function now_ms()
  local t = redis.call('TIME')
  local s = t[1] .. string.sub('00000' .. t[2], -6, -4)  -- micros, zero-padded, to ms
  return tonumber(s), s
end

-- Write `state` ('0', 'H' or 'S') on the given seat indices (sorted ascending), one
-- SETRANGE per run of adjacent seats.
local function set_seats(indices, state)
  local n = #indices
  local start, len = indices[1], 1
  for i = 2, n + 1 do
    if i <= n and indices[i] == indices[i - 1] + 1 then
      len = len + 1
    else
      redis.call('SETRANGE', SEATS, string.format('%d', start), string.rep(state, len))
      if i <= n then start, len = indices[i], 1 end
    end
  end
end

-- A client's admission state ('c:<client>' in RECORDS, as read; nil: none) as numbers:
-- active holds and GCRA tat (µs).
local function client_state(raw)
  if not raw then return 0, 0 end
  local n, tat = string.match(raw, '^(%d+) (%d+)$')
  return tonumber(n), tonumber(tat)
end

-- The entry to store for it, or nil when it limits nothing any more. `now` in ms.
local function client_entry(n, tat, now)
  if n <= 0 and tat <= now * 1000 then return nil end
  return string.format('%d %d', n, tat)
end

-- Turn an active hold's record into a tombstone and stop counting it against its client.
local function retire(hold_id, rec, status, now)
  rec.status = status
  rec.ended_ms = now
  local field = 'c:' .. rec.client
  local n, tat = client_state(redis.call('HGET', RECORDS, field))
  local entry = client_entry(math.max(n - 1, 0), tat, now)
  if entry then
    redis.call('HSET', RECORDS, hold_id, cjson.encode(rec), field, entry)
  else
    redis.call('HSET', RECORDS, hold_id, cjson.encode(rec))
    redis.call('HDEL', RECORDS, field)
  end
  redis.call('ZREM', HOLDS, hold_id)
  redis.call('ZADD', ENDED, now, hold_id)
end

-- Accessible seating. `access` is meta's field: the pairs as 'space:companion,...'.

-- Seat position (1-based) -> 'W' or 'C' for every seat of the pairs.
local function access_roles(access)
  local role = {}
  for s, c in string.gmatch(access, '(%d+):(%d+)') do
    role[tonumber(s) + 1], role[tonumber(c) + 1] = 'W', 'C'
  end
  return role
end

-- `seats` with the layout applied: free spaces and companions withheld, any other withheld
-- seat free again (amphi/accessible.py `withhold`). Returns it and the seats withheld.
local function withhold(seats, access)
  local role, n = access_roles(access), 0
  seats = string.gsub(seats, '[WC]', '0')
  seats = string.gsub(seats, '()0', function(at)
    if role[at] then
      n = n + 1
      return role[at]
    end
  end)
  return seats, n
end

-- Put the withheld seats on general sale, for good.
local function release_withheld()
  local seats = redis.call('GET', SEATS)
  if seats then redis.call('SET', SEATS, (string.gsub(seats, '[WC]', '0'))) end
  redis.call('HSET', META, 'access_released', '1', 'withheld', '0')
end

-- Whether every seat but the pairs' is sold: no seat outside them free or held. The first
-- one found ends the look, so a block far from sold out costs one find.
local function general_sold_out(seats, access)
  local role, at = access_roles(access), 1
  while true do
    local i = string.find(seats, '[0H]', at)
    if not i then return true end
    if not role[i] then return false end
    at = i + 1
  end
end

-- After seats were sold: release the withheld seats if the rest of the block is sold out.
local function release_if_sold_out()
  local a = redis.call('HMGET', META, 'access', 'access_released')
  if a[1] and a[2] ~= '1' and general_sold_out(redis.call('GET', SEATS), a[1]) then
    release_withheld()
  end
end

-- The seats of `spaces` wheelchair spaces (with their companions if `companions`), from
-- the first usable pairs of `access`: a space withheld ('W') or, once released, free ('0'),
-- its companion likewise (amphi/accessible.py `choose_pairs`). Returns them ascending (nil
-- when too few pairs are usable), the usable pairs, and how many of them were withheld.
local function pick_accessible(seats, access, spaces, companions)
  local picked, found, withheld, byte = {}, 0, 0, string.byte
  for s, c in string.gmatch(access, '(%d+):(%d+)') do
    local sb, cb = byte(seats, s + 1), byte(seats, c + 1)
    if (sb == 87 or sb == 48) and (not companions or cb == 67 or cb == 48) then
      found = found + 1
      if found <= spaces then
        picked[#picked + 1] = tonumber(s)
        if sb == 87 then withheld = withheld + 1 end
        if companions then
          picked[#picked + 1] = tonumber(c)
          if cb == 67 then withheld = withheld + 1 end
        end
      end
    end
  end
  if found < spaces then return nil, found, 0 end
  table.sort(picked)
  return picked, found, withheld
end

-- An accessible hold's seats back: withheld again unless released, by the current layout.
local function restore_accessible(seats)
  local a = redis.call('HMGET', META, 'access', 'access_released')
  if not a[1] or a[2] == '1' then
    set_seats(seats, '0')
    return
  end
  local role, n = access_roles(a[1]), 0
  for _, idx in ipairs(seats) do
    local state = role[idx + 1] or '0'
    redis.call('SETRANGE', SEATS, string.format('%d', idx), state)
    if state ~= '0' then n = n + 1 end
  end
  if n > 0 then redis.call('HINCRBY', META, 'withheld', n) end
end

-- Give a hold's seats back to sale and retire it.
local function end_hold(hold_id, rec, status, now)
  if rec.acc then
    restore_accessible(rec.seats)
  elseif rec.seats and #rec.seats > 0 then
    set_seats(rec.seats, '0')
  end
  redis.call('HINCRBY', META, 'held', -rec.qty)
  retire(hold_id, rec, status, now)
end

-- Expire at most `limit` holds past their expiry and drop tombstones older than
-- `tombstone_ms` (nil: leave them to the sweeper, off the hot path). `limit` is a string
-- (see Speed above). `due` is meta's due_ms as read (nil: unknown): before it nothing can
-- have expired, and the hot path does not read HOLDS at all. Returns the number of seats
-- given back and a lower bound of the expiries left in HOLDS, as a string (nil: HOLDS is
-- empty).
local function reclaim(now, limit, tombstone_ms, due)
  if due and not tombstone_ms and now < tonumber(due) then return 0, due end
  -- HOLDS from its earliest: every hold looked at that has expired leaves it, so each look
  -- starts at rank 0, and the first one that has not expired is the bound. The first look
  -- takes 4, as a few at most have expired when fans keep the block busy; a backlog (the
  -- sweeper's case) is read in one more.
  local freed, n, seen, most = 0, 0, 0, tonumber(limit)
  local bound, size, done = nil, 4, false
  repeat
    local batch = redis.call('ZRANGE', HOLDS, '0', string.format('%d', size - 1), 'WITHSCORES')
    done = #batch < 2 * size  -- HOLDS ends in this batch
    for i = 1, #batch, 2 do
      local hold_id, expires_s = batch[i], batch[i + 1]
      if seen == most or tonumber(expires_s) > now then
        bound, done = expires_s, true
        break
      end
      seen = seen + 1
      local raw = redis.call('HGET', RECORDS, hold_id)
      if raw then
        local rec = cjson.decode(raw)
        end_hold(hold_id, rec, 'expired', now)
        freed, n = freed + rec.qty, n + 1
      else
        redis.call('ZREM', HOLDS, hold_id)
      end
    end
    size = most - seen + 1  -- the rest of the limit, and one more for the bound
  until done
  if n > 0 then redis.call('HINCRBY', META, 'expired', n) end
  if not tombstone_ms then return freed, bound end
  -- Off the hot path: tombstones past their time, and a step of the scan for client
  -- entries that no longer limit (see KEYS[4]).
  local cursor = redis.call('HGET', META, 'clients_scan') or '0'
  local scan = redis.call('HSCAN', RECORDS, cursor, 'MATCH', 'c:*', 'COUNT', limit)
  local entries = scan[2]
  for i = 1, #entries, 2 do
    local n, tat = client_state(entries[i + 1])
    if not client_entry(n, tat, now) then
      redis.call('HDEL', RECORDS, entries[i])
    end
  end
  if scan[1] ~= cursor then redis.call('HSET', META, 'clients_scan', scan[1]) end
  local old = redis.call('ZRANGEBYSCORE', ENDED, '-inf', now - tombstone_ms, 'LIMIT', '0', limit)
  if #old > 0 then
    redis.call('HDEL', RECORDS, unpack(old))
    redis.call('ZREM', ENDED, unpack(old))
  end
  return freed, bound
end
