-- lua/_pick.lua: the best-available policy (spec: engine/best_available.py), inlined by
-- engine/scripts.py where a script says `--!include _pick`. Pure functions of a seat string;
-- seat indices are 0-based. Both return nil when the party cannot be seated.

-- qty seat indices from `first` on.
local function _seat_run(first, qty)
  local picked = {}
  for i = 0, qty - 1 do picked[i + 1] = first + i end
  return picked
end

-- Best run of qty adjacent free seats: non-stranding first, then front row, then centre.
-- Only a few starts of each free run can win: those nearest the centre, the ends, and two
-- seats in from either end. Plain finds jump over full rows and over runs too short for
-- the party, in C; no table or closure is made per run.
local function pick_adjacent(seats, rows, spr, qty)
  local find, floor, abs = string.find, math.floor, math.abs
  local need = string.rep('0', qty)
  local lo, hi = floor((spr - qty) / 2), math.ceil((spr - qty) / 2)  -- starts that centre it
  local best_s, best_off  -- non-stranding, in the current row
  local fb_s, fb_off, fb_r  -- stranding a seat, in the first row that has such a choice
  local at = 1
  while true do
    local hit = find(seats, need, at, true)
    if not hit then break end
    local r = floor((hit - 1) / spr)
    local base = r * spr
    at = base + spr + 1  -- the next search starts at the next row
    if hit + qty - 1 < at then  -- else the first run crosses into row r + 1: row r has none
      local row = string.sub(seats, base + 1, base + spr)
      local a = hit - base  -- 1-based in the row: a run of at least qty starts here
      while a do
        local stop = find(row, '[^0]', a + qty)
        local b = stop and stop - 1 or spr  -- the run's last seat (1-based)
        local first, e = a - 1, b - qty  -- first and last possible start (0-based)
        -- A run one seat longer than the party strands a seat wherever it sits: only the
        -- first row with a stranding choice keeps one.
        if e - first ~= 1 or fb_r == nil or fb_r == r then
          for k = 1, 6 do
            local s = k == 1 and lo or k == 2 and hi or k == 3 and first
              or k == 4 and first + 2 or k == 5 and e - 2 or e
            if s < first then s = first elseif s > e then s = e end
            local off = abs(2 * s + qty - spr)
            if s - first == 1 or e - s == 1 then
              if fb_r == nil or (fb_r == r and (off < fb_off or (off == fb_off and s < fb_s))) then
                fb_s, fb_off, fb_r = s, off, r
              end
            elseif best_s == nil or off < best_off or (off == best_off and s < best_s) then
              best_s, best_off = s, off
            end
          end
        end
        a = b + 2 <= spr - qty + 1 and find(row, need, b + 2, true) or nil
      end
      if best_s then return _seat_run(r * spr + best_s, qty) end
    end
  end
  if fb_r == nil then return nil end
  return _seat_run(fb_r * spr + fb_s, qty)
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
