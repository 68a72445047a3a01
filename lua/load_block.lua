-- lua/load_block.lua: create a seat block in Redis, or refresh its price, on-sale flag and
-- accessible seating. An existing block keeps its seats, holds and counters: loading twice
-- loses no sale. A changed layout applies to the seats free now (held and sold ones follow
-- when their hold ends, or at the next rebuild).
--!include _block
-- KEYS[1] {blk}:meta   KEYS[2] {blk}:seats   (see _block.lua; the others are not used)
-- ARGV[1] kind ('reserved' | 'ga')  ARGV[2] capacity  ARGV[3] rows  ARGV[4] seats_per_row
-- ARGV[5] price_cents  ARGV[6] active ('1' | '0')
-- ARGV[7] sold: reserved, comma-separated seat indices; ga, a count (only used on create)
-- ARGV[8] accessible pairs, meta's `access` ('' none)  ARGV[9] '1': the box office released
-- them to general sale (once released, a block keeps them on general sale)
-- Returns {1, 'created'} | {1, 'refreshed'}
--       | {0, 'geometry_mismatch' | 'bad_geometry' | 'bad_kind' | 'bad_sold'}
local kind, capacity, rows, spr = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

if kind ~= 'reserved' and kind ~= 'ga' then return {0, 'bad_kind'} end
if not (capacity and rows and spr) or capacity < 1
    or (kind == 'reserved' and rows * spr ~= capacity) then
  return {0, 'bad_geometry'}
end
-- Accessible seating as the ledger has it now; free seats follow the layout.
local function set_access(access, release)
  local was = redis.call('HMGET', META, 'access', 'access_released')
  if access == (was[1] or '') and not release then return end
  if access == '' then
    redis.call('HDEL', META, 'access')
  else
    redis.call('HSET', META, 'access', access)
  end
  if was[2] == '1' then return end  -- on general sale for good
  if release then
    release_withheld()
  else
    local seats, n = withhold(redis.call('GET', SEATS), access)
    redis.call('SET', SEATS, seats)
    redis.call('HSET', META, 'withheld', string.format('%d', n))
  end
end
local access, release = kind == 'reserved' and ARGV[8] or '', ARGV[9] == '1'

local current = redis.call('HMGET', META, 'kind', 'capacity', 'rows', 'seats_per_row')
if current[1] then
  if current[1] ~= kind or tonumber(current[2]) ~= capacity
      or tonumber(current[3]) ~= rows or tonumber(current[4]) ~= spr then
    return {0, 'geometry_mismatch'}
  end
  redis.call('HSET', META, 'price_cents', ARGV[5], 'active', ARGV[6])
  set_access(access, release)
  return {1, 'refreshed'}
end

local sold = 0
if kind == 'reserved' then
  local seats = {}
  for i = 1, capacity do seats[i] = '0' end
  for token in string.gmatch(ARGV[7], '[^,]+') do
    local i = tonumber(token)
    if not i or i ~= math.floor(i) or i < 0 or i >= capacity then return {0, 'bad_sold'} end
    i = i + 1
    if seats[i] ~= 'S' then sold = sold + 1 end
    seats[i] = 'S'
  end
  redis.call('SET', SEATS, table.concat(seats))
else
  sold = tonumber(ARGV[7] ~= '' and ARGV[7] or '0')
  if not sold or sold ~= math.floor(sold) or sold < 0 or sold > capacity then
    return {0, 'bad_sold'}
  end
end
redis.call('HSET', META, 'kind', kind, 'capacity', capacity, 'rows', rows,
  'seats_per_row', spr, 'price_cents', ARGV[5], 'active', ARGV[6], 'held', 0, 'sold', sold)
set_access(access, release)
return {1, 'created'}
