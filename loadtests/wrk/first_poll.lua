-- loadtests/wrk/first_poll.lua: every fan's first poll after the on-sale start, once each:
-- GET /api/queue/status/ with their pre-queue ticket, which answers with their drawn position
-- in a new ticket. Each thread takes its share of the tickets, writes the new ones to
-- "<prefix>-<id>.txt", and stops once it has every answer.
-- args: <tickets file, one a line> <threads> <new tickets file prefix>
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local stats = dofile(dir .. "stats.lua")
local mine, sent, answered, out = {}, 0, 0, nil
local path = "/api/queue/status/?queue_ticket="

setup = stats.setup
done = stats.done

function init(args)
  counts = {}
  local threads, n = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if n % threads == id - 1 then mine[#mine + 1] = line end
    n = n + 1
  end
  out = io.open(string.format("%s-%d.txt", args[3], id), "w")
end

function request()
  sent = sent + 1
  return wrk.format("GET", path .. mine[(sent - 1) % #mine + 1])
end

function response(status, headers, body)
  stats.count(status)
  answered = answered + 1
  local ticket = body:match('"queue_ticket":"([^"]+)"')
  if ticket and answered <= #mine then out:write(ticket, "\n") end
  if answered == #mine then
    out:close()
    wrk.thread:stop()
  end
end
