-- lua/seat_map.lua: a reserved block's seats as fans may pick them, after its expired holds
-- are given back (as create_hold does, so the map never shows a hold that is over).
--!include _block
-- ARGV[1] reclaim_limit (holds expired per call)
-- Returns {kind, seats_per_row, active, seats}   seats: one byte a seat, '0' free, 'H' held,
--                                                'S' sold ('' for general admission)
--   | {-1} when the block is not loaded.
local m = redis.call('HMGET', META, 'kind', 'seats_per_row', 'active', 'due_ms')
if not m[1] then return {-1} end
reclaim(now_ms(), ARGV[1], nil, m[4])
local seats = ''
if m[1] == 'reserved' then seats = redis.call('GET', SEATS) end
return {m[1], m[2] or '0', m[3], seats}
