-- lua/admit_hold.lua: admit one client's hold request before any seat is touched:
-- replay an Idempotency-Key, apply the per-client rate limit (GCRA: `limit` requests a
-- minute, bursts up to `limit`), and cap the client's active holds.
-- KEYS[1] {own:<client>}:rate   string, the rate limiter's theoretical arrival time (ms)
-- KEYS[2] {own:<client>}:holds  zset hold_id -> expires_at_ms of the client's holds
-- KEYS[3] {own:<client>}:idem:<key>  optional: '<hold_id>|<request fingerprint>'
-- ARGV[1] hold_id  ARGV[2] ttl_ms  ARGV[3] max_active  ARGV[4] rate_limit_per_minute
-- (0: off)  ARGV[5] request fingerprint (with KEYS[3])
-- Returns {1, hold_id}                     admitted, hold_id counted as active
--       | {2, hold_id}                     replay: the key already made hold_id
--       | {0, 'idempotency_mismatch', 0}   the key was used for a different request
--       | {0, 'rate_limited', retry_ms}
--       | {0, 'too_many_holds', retry_ms}
local RATE, ACTIVE, IDEM = KEYS[1], KEYS[2], KEYS[3]
local hold_id, ttl_ms = ARGV[1], tonumber(ARGV[2])
local max_active, per_minute = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if IDEM then
  local seen = redis.call('GET', IDEM)
  if seen then
    local sep = string.find(seen, '|', 1, true)
    if string.sub(seen, sep + 1) ~= ARGV[5] then return {0, 'idempotency_mismatch', 0} end
    return {2, string.sub(seen, 1, sep - 1)}
  end
end

if per_minute > 0 then
  local interval = 60000 / per_minute
  local tat = tonumber(redis.call('GET', RATE) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  if new_tat - now > 60000 then
    return {0, 'rate_limited', math.ceil(new_tat - now - 60000)}
  end
  redis.call('SET', RATE, new_tat, 'PX', math.ceil(new_tat - now))
end

redis.call('ZREMRANGEBYSCORE', ACTIVE, '-inf', now)
if redis.call('ZCARD', ACTIVE) >= max_active then
  local first = redis.call('ZRANGE', ACTIVE, 0, 0, 'WITHSCORES')
  return {0, 'too_many_holds', math.max(0, tonumber(first[2]) - now)}
end
redis.call('ZADD', ACTIVE, now + ttl_ms, hold_id)
redis.call('PEXPIRE', ACTIVE, ttl_ms)
if IDEM then
  redis.call('SET', IDEM, hold_id .. '|' .. ARGV[5], 'PX', ttl_ms)
end
return {1, hold_id}
