-- lua/availability.lua: reclaim a block's expired holds, then report its counters.
-- The sweeper calls it too, for blocks that no fan touches; it also trims tombstones and
-- client entries that limit nothing any more (see _block.lua), which the hot path leaves
-- alone.
--!include _block
-- ARGV[1] reclaim_limit (holds expired per call)  ARGV[2] tombstone_ms
-- Returns {capacity, held, sold, price_cents, active, freed_seats, expired_left, withheld,
--          wheelchair spaces free}
--   | {-1} when the block is not loaded. available = capacity - held - sold - withheld: the
--   seats a general hold may get; the free spaces are a hold asking for accessible seating's
--   (withheld, or on general sale and free).
local m = redis.call('HMGET', META, 'capacity', 'held', 'sold', 'price_cents', 'active')
if not m[1] then return {-1} end
local now = now_ms()
local freed = reclaim(now, ARGV[1], tonumber(ARGV[2]))
local left = redis.call('ZCOUNT', HOLDS, '-inf', now)
local c = redis.call('HMGET', META, 'held', 'sold', 'withheld', 'access')
local spaces = 0
if c[4] then spaces = select(2, pick_accessible(redis.call('GET', SEATS), c[4], 0, false)) end
return {tonumber(m[1]), tonumber(c[1]), tonumber(c[2]), tonumber(m[4]), tonumber(m[5]), freed,
  left, tonumber(c[3] or '0'), spaces}
