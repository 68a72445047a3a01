-- loadtests/wrk/join.lua: POST /api/queue/join/ as a crowd of distinct fans, each a guest
-- with an address of its own (X-Forwarded-For, as a load balancer sends it; thread `id` and
-- a counter make it unique), and keep every queue ticket for the polling phase: each thread
-- appends its fans' tickets to "<prefix>-<id>.txt".
-- args: <event date YYYY-MM-DD> <tickets file prefix>
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local stats = dofile(dir .. "stats.lua")
local sent, template, out = 0, nil, nil
local path = "/api/queue/join/"

setup = stats.setup
done = stats.done

function init(args)
  counts = {}
  local body = string.format('{"event_date": "%s"}', args[1])
  template = "POST " .. path .. " HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n" ..
    "X-Forwarded-For: 10.%d.%d.%d\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
  out = io.open(string.format("%s-%d.txt", args[2], id), "a")
end

function request()
  sent = sent + 1
  return string.format(template, wrk.headers["Host"], id, math.floor(sent / 256) % 256,
    sent % 256)
end

function response(status, headers, body)
  stats.count(status)
  local ticket = body:match('"queue_ticket":"([^"]+)"')
  if ticket then out:write(ticket, "\n") end
end
