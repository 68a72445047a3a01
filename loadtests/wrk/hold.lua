-- loadtests/wrk/hold.lua: POST .../holds/create/ as many fans at once. Every request comes
-- from a random fan: a guest with its own address (X-Forwarded-For, as a load balancer
-- sends it) or a signed-in fan with its own Bearer token, so the per-fan rate limit and
-- active-hold cap apply as in production. Each has an Idempotency-Key of its own and asks
-- for a random block (section, date), the targets file listing big sections more often so
-- that blocks fill evenly.
-- args: <tokens file | guests:N> <targets file: "<section_id> <YYYY-MM-DD>" a line> <quantity>
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local stats = dofile(dir .. "stats.lua")
local fans, bodies = {}, {}  -- "X-Forwarded-For: ..." or "Authorization: Bearer ..." lines
local sent, nonce, template = 0, 0, nil
local path = "/api/tickets/amphitheater/holds/create/"

setup = stats.setup
done = stats.done

function init(args)
  counts = {}
  if args[1]:match("^guests:") then
    for n = 1, tonumber(args[1]:sub(8)) do
      fans[n] = string.format("X-Forwarded-For: 10.%d.%d.%d", math.floor(n / 65536) % 256,
        math.floor(n / 256) % 256, n % 256)
    end
  else
    for line in io.lines(args[1]) do fans[#fans + 1] = "Authorization: Bearer " .. line end
  end
  local quantity = tonumber(args[3] or "2")
  for line in io.lines(args[2]) do
    local section, day = line:match("^(%S+) (%S+)$")
    local body = string.format(
      '{"section_id": "%s", "event_date": "%s", "quantity": %d}', section, day, quantity)
    bodies[#bodies + 1] = string.format("Content-Length: %d\r\n\r\n%s", #body, body)
  end
  math.randomseed(os.time() * 100 + id)
  nonce = math.random(1, 2 ^ 30)  -- keys never repeat across runs
end

-- The request as wrk.format would write it, in one string.format: the load generator
-- shares the 2 cores with the server, so its cost per request is kept to a minimum.
function request()
  sent = sent + 1
  if not template then
    template = "POST " .. path .. " HTTP/1.1\r\nHost: " .. wrk.headers["Host"] ..
      "\r\nContent-Type: application/json\r\nIdempotency-Key: %d-%d-%d\r\n%s\r\n%s"
  end
  return string.format(template, nonce, id, sent, fans[math.random(#fans)],
    bodies[math.random(#bodies)])
end

function response(status, headers, body)
  stats.count(status)
end
