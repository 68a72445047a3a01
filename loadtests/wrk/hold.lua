-- loadtests/wrk/hold.lua: POST .../holds/create/ as many fans at once. Every request has a
-- random fan's own Bearer token (so the per-fan rate limit and active-hold cap apply as in
-- production), an Idempotency-Key of its own, and a random block (section, date), the
-- targets file listing big sections more often so that blocks fill evenly.
-- args: <tokens file> <targets file: "<section_id> <YYYY-MM-DD>" a line> <quantity>
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local stats = dofile(dir .. "stats.lua")
local tokens, bodies = {}, {}
local sent, nonce = 0, 0
local path = "/api/tickets/amphitheater/holds/create/"

setup = stats.setup
done = stats.done

function init(args)
  counts = {}
  for line in io.lines(args[1]) do tokens[#tokens + 1] = "Bearer " .. line end
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
  return wrk.format("POST", path, {
    ["Authorization"] = tokens[math.random(#tokens)],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("%d-%d-%d", nonce, id, sent),
  }, bodies[math.random(#bodies)])
end

function response(status, headers, body)
  stats.count(status)
end
