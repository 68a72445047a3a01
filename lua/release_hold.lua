-- lua/release_hold.lua: end an active hold at its holder's request and free its seats.
-- A hold already past its expiry is expired instead (as the sweeper would have done), and
-- counted in the block's `expired` (see _block.lua).
--!include _block
-- ARGV[1] hold_id  ARGV[2] requester (user id, '' for a guest)  ARGV[3] force ('1': the
-- system releases it, e.g. for a failed payment, whoever owns it)
-- Returns {1, qty}                         released
--       | {0, 'not_found'}                  no such hold in this block (or long gone)
--       | {0, 'forbidden'}                  the hold belongs to another user
--       | {0, 'not_active', status}         already released / expired / sold
local hold_id, requester = ARGV[1], ARGV[2]
local raw = redis.call('HGET', RECORDS, hold_id)
if not raw then return {0, 'not_found'} end
local rec = cjson.decode(raw)
if ARGV[3] ~= '1' and rec.owner ~= '' and rec.owner ~= requester then
  return {0, 'forbidden'}
end
if rec.status ~= 'active' then return {0, 'not_active', rec.status} end
local now = now_ms()
if rec.expires_ms <= now then
  end_hold(hold_id, rec, 'expired', now)
  redis.call('HINCRBY', META, 'expired', 1)
  return {0, 'not_active', 'expired'}
end
end_hold(hold_id, rec, 'released', now)
return {1, rec.qty}
