-- lua/unadmit_hold.lua: stop counting a hold against its client: the hold was refused,
-- released or sold. Forgets the Idempotency-Key only if it still points at this hold and
-- the hold never came to be (so a retry may try again).
-- KEYS[1] {own:<client>}:holds  zset hold_id -> expires_at_ms
-- KEYS[2] {own:<client>}:idem:<key>  optional
-- ARGV[1] hold_id  ARGV[2] forget_key ('1' | '0')
-- Returns 1 if the hold was counted, else 0.
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if KEYS[2] and ARGV[2] == '1' then
  local seen = redis.call('GET', KEYS[2])
  if seen and string.sub(seen, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
    redis.call('DEL', KEYS[2])
  end
end
return removed
