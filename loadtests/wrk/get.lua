-- loadtests/wrk/get.lua: GET one of several paths at random (or wrk's URL path).
-- args: [paths file, one path a line]
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local stats = dofile(dir .. "stats.lua")
local paths = {}

setup = stats.setup
done = stats.done

function init(args)
  counts = {}
  if args[1] then
    for line in io.lines(args[1]) do paths[#paths + 1] = line end
  end
  math.randomseed(os.time() * 100 + id)
end

function request()
  if #paths == 0 then return wrk.format("GET") end
  return wrk.format("GET", paths[math.random(#paths)])
end

function response(status, headers, body)
  stats.count(status)
end
