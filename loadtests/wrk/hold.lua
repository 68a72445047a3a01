-- loadtests/wrk/hold.lua: POST .../holds/create/ as many fans at once. Every request comes
-- from a random fan: a guest with its own address (X-Forwarded-For, as a load balancer
-- sends it) or a signed-in fan with its own Bearer token, so the per-fan rate limit and
-- active-hold cap apply as in production. Each has an Idempotency-Key of its own and asks
-- for a random block (section, date), the targets file listing big sections more often so
-- that blocks fill evenly.
-- args: <tokens file | guests:N> <targets file: "<section_id> <YYYY-MM-DD>" a line> <quantity>
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local stats = dofile(dir .. "stats.lua")
local tokens, bodies, guests = {}, {}, 0
local sent, nonce = 0, 0
local path = "/api/tickets/amphitheater/holds/create/"

setup = stats.setup
done = stats.done

function init(args)
  counts = {}
  if args[1]:match("^guests:") then
    guests = tonumber(args[1]:sub(8))
  else
    for line in io.lines(args[1]) do tokens[#tokens + 1] = "Bearer " .. line end
  end
  local quantity = tonumber(args[3] or "2")
  for line in io.lines(args[2]) do
    local section, day = line:match("^(%S+) (%S+)$")
    bodies[#bodies + 1] = string.format(
      '{"section_id": "%s", "event_date": "%s", "quantity": %d}', section, day, quantity)
  end
  math.randomseed(os.time() * 100 + id)
  nonce = math.random(1, 2 ^ 30)  -- keys never repeat across runs
end

function request()
  sent = sent + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("%d-%d-%d", nonce, id, sent),
  }
  if guests > 0 then
    local n = math.random(guests)
    headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256,
      math.floor(n / 256) % 256, n % 256)
  else
    headers["Authorization"] = tokens[math.random(#tokens)]
  end
  return wrk.format("POST", path, headers, bodies[math.random(#bodies)])
end

function response(status, headers, body)
  stats.count(status)
end
