-- lua/_block.lua: shared prelude of the block scripts, inlined by engine/scripts.py where a
-- script says `--!include _block`. Every block script takes the same six keys:
-- KEYS[1] {blk}:meta     hash kind, capacity, rows, seats_per_row, price_cents, active, held,
--                        sold, expired (holds that ever expired in this block, for metrics:
--                        reclaim adds its batch in one HINCRBY, release_hold and sell_hold
--                        the one they find past due; absent until the first), and
--                        'c:<client>' -> the client's active holds (the cap), kept beside
--                        `held` so one HMGET reads and one HSET writes both
-- KEYS[2] {blk}:seats    string, one byte a seat: '0' free, 'H' held, 'S' sold (reserved only)
-- KEYS[3] {blk}:holds    zset hold_id -> expires_at_ms, active holds only
-- KEYS[4] {blk}:records  hash hold_id -> JSON record (active holds and recent tombstones)
-- KEYS[5] {blk}:ended    zset hold_id -> ended_at_ms, so tombstones can be trimmed
-- KEYS[6] {blk}:rate     zset client -> rate limiter's theoretical arrival time (ms, GCRA)
-- Speed: a Lua number handed to redis.call (or cjson) is formatted with a %.17g snprintf,
-- about as dear as a small command, so the hot path hands over strings: ARGV's, TIME's, or
-- string.format('%d') (a quarter of the cost).
local META, SEATS, HOLDS, RECORDS, ENDED = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local RATE = KEYS[6]

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

-- Holds retired in this call, by client: a script that read a client's count before it
-- reclaimed can correct it without reading it again.
local retired = {}

-- Turn an active hold's record into a tombstone and stop counting it against its client.
local function retire(hold_id, rec, status, now)
  retired[rec.client] = (retired[rec.client] or 0) + 1
  rec.status = status
  rec.ended_ms = now
  redis.call('HSET', RECORDS, hold_id, cjson.encode(rec))
  redis.call('ZREM', HOLDS, hold_id)
  redis.call('ZADD', ENDED, now, hold_id)
  if redis.call('HINCRBY', META, 'c:' .. rec.client, -1) <= 0 then
    redis.call('HDEL', META, 'c:' .. rec.client)
  end
end

-- Give a hold's seats back to sale and retire it.
local function end_hold(hold_id, rec, status, now)
  if rec.seats and #rec.seats > 0 then set_seats(rec.seats, '0') end
  redis.call('HINCRBY', META, 'held', -rec.qty)
  retire(hold_id, rec, status, now)
end

-- Expire at most `limit` holds past their expiry and drop tombstones older than
-- `tombstone_ms` (nil: leave them to the sweeper, off the hot path). `now_s` and `limit`
-- are strings (see Speed above). Returns the number of seats given back.
local function reclaim(now, now_s, limit, tombstone_ms)
  local freed, n = 0, 0
  local expired = redis.call('ZRANGEBYSCORE', HOLDS, '-inf', now_s, 'LIMIT', '0', limit)
  for _, hold_id in ipairs(expired) do
    local raw = redis.call('HGET', RECORDS, hold_id)
    if raw then
      local rec = cjson.decode(raw)
      end_hold(hold_id, rec, 'expired', now)
      freed, n = freed + rec.qty, n + 1
    else
      redis.call('ZREM', HOLDS, hold_id)
    end
  end
  if n > 0 then redis.call('HINCRBY', META, 'expired', n) end
  if not tombstone_ms then return freed end
  -- Off the hot path: tombstones past their time, and rate entries that no longer limit.
  redis.call('ZREMRANGEBYSCORE', RATE, '-inf', now_s)
  local old = redis.call('ZRANGEBYSCORE', ENDED, '-inf', now - tombstone_ms, 'LIMIT', '0', limit)
  if #old > 0 then
    redis.call('HDEL', RECORDS, unpack(old))
    redis.call('ZREM', ENDED, unpack(old))
  end
  return freed
end
