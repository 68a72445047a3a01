-- lua/_block.lua: shared prelude of the block scripts, inlined by engine/scripts.py where a
-- script says `--!include _block`. Every block script takes the same five keys:
-- KEYS[1] {blk}:meta     hash kind, capacity, rows, seats_per_row, price_cents, active, held,
--                        sold, expired (holds that ever expired in this block, for metrics:
--                        reclaim adds its batch in one HINCRBY, release_hold and sell_hold
--                        the one they find past due; absent until the first), clients_scan
--                        (the sweeper's HSCAN cursor over the client entries of KEYS[4]),
--                        due_ms (no hold in KEYS[3] expires before it, so create_hold skips
--                        reclaim until then; written with each new hold, absent: unknown).
--                        A few fields: Redis keeps it a listpack that one HMGET reads cheaply
-- KEYS[2] {blk}:seats    string, one byte a seat: '0' free, 'H' held, 'S' sold (reserved only)
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

-- Give a hold's seats back to sale and retire it.
local function end_hold(hold_id, rec, status, now)
  if rec.seats and #rec.seats > 0 then set_seats(rec.seats, '0') end
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
