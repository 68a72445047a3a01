-- lua/room_join.lua: a fan joins the waiting room of a date, once: joining again returns the
-- same place. Before the on-sale start they enter the pre-queue with a random score (their
-- place in it is drawn, not earned by speed); after it, they get the next position.
--!include _room
-- ARGV[1] identity  ARGV[2] random score (a uniform draw, from the caller)
-- Returns {'pre', 0, now, new}          in the pre-queue; the position comes at the start
--       | {'pos', position, now, new}   their position (pre-queue fans too, once ranked)
--       | {'closed', 0, now, 0}         no open or paused room for that date
--       | {'early', prequeue_ms, now, 0}  the room does not take fans yet
-- (new: 1 if this call gave the fan their place, 0 if they had one)
local identity = ARGV[1]
local now = now_ms()
local cfg = config()
if not cfg or cfg.state == 'closed' then return {'closed', 0, now, 0} end
if now < tonumber(cfg.prequeue_ms) then return {'early', tonumber(cfg.prequeue_ms), now, 0} end
rank_if_started(cfg, now)
local place = redis.call('HGET', PLACES, identity)
if place == 'pre' then
  if cfg.ranked ~= '1' then return {'pre', 0, now, 0} end
  place = redis.call('ZRANK', PREQUEUE, identity) + 1
  redis.call('HSET', PLACES, identity, place)
  return {'pos', place, now, 0}
elseif place then
  return {'pos', tonumber(place), now, 0}
end
if cfg.ranked ~= '1' then
  redis.call('ZADD', PREQUEUE, ARGV[2], identity)
  redis.call('HSET', PLACES, identity, 'pre')
  return {'pre', 0, now, 1}
end
local position = redis.call('HINCRBY', COUNTERS, 'last', 1)
redis.call('HSET', PLACES, identity, position)
return {'pos', position, now, 1}
