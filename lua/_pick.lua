-- lua/_pick.lua: the best-available policy (spec: engine/best_available.py), inlined by
-- engine/scripts.py where a script says `--!include _pick`. Pure functions of a seat string;
-- seat indices are 0-based. Both return nil when the party cannot be seated.

-- Best run of qty adjacent free seats: non-stranding first, then front row, then centre.
local function pick_adjacent(seats, rows, spr, qty)
  local need = string.rep('0', qty)
  local best_s, best_off, best_r
  local fb_s, fb_off, fb_r
  local ideal = (spr - qty) / 2  -- the start that centres the party in its row
  -- One plain find over the whole map jumps past full rows (most rows, late in a sale).
  local at = 1
  while true do
    local hit = string.find(seats, need, at, true)
    if not hit then break end
    local r = math.floor((hit - 1) / spr)
    at = (r + 1) * spr + 1  -- the next search starts at the next row
    if hit + qty - 1 < at then  -- else the first run crosses into row r + 1: row r has none
      local row = string.sub(seats, r * spr + 1, (r + 1) * spr)
      local pos = 1
      while true do
        local a, b = string.find(row, '0+', pos)
        if not a then break end
        if b - a + 1 >= qty then
          local first, e = a - 1, b - qty  -- 0-based first seat and last possible start
          local cands = {math.floor(ideal), math.ceil(ideal), first, first + 2, e - 2, e}
          for _, s in ipairs(cands) do
            if s < first then s = first elseif s > e then s = e end
            local off = math.abs(2 * s + qty - spr)
            if s - first == 1 or e - s == 1 then
              if fb_r == nil or (fb_r == r and (off < fb_off or (off == fb_off and s < fb_s))) then
                fb_s, fb_off, fb_r = s, off, r
              end
            elseif best_r == nil or off < best_off or (off == best_off and s < best_s) then
              best_s, best_off, best_r = s, off, r
            end
          end
        end
        pos = b + 1
      end
      if best_r then break end
    end
  end
  local r, s = best_r, best_s
  if r == nil then r, s = fb_r, fb_s end
  if r == nil then return nil end
  local picked = {}
  for i = 0, qty - 1 do picked[#picked + 1] = r * spr + s + i end
  return picked
end

-- Single seats when no row seats the party together: front row first, nearest the centre.
local function pick_split(seats, rows, spr, qty)
  local picked = {}
  for r = 0, rows - 1 do
    local free = {}
    for o = 0, spr - 1 do
      if string.byte(seats, r * spr + o + 1) == 48 then free[#free + 1] = o end
    end
    table.sort(free, function(x, y)
      local dx, dy = math.abs(2 * x + 1 - spr), math.abs(2 * y + 1 - spr)
      if dx ~= dy then return dx < dy end
      return x < y
    end)
    for _, o in ipairs(free) do
      picked[#picked + 1] = r * spr + o
      if #picked == qty then
        table.sort(picked)
        return picked
      end
    end
  end
  return nil
end
