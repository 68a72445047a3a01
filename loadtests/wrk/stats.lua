-- loadtests/wrk/stats.lua: status counting shared by the wrk scripts (loaded with dofile).
-- Each thread counts response statuses in its global `counts`; done() merges them and
-- prints one line, "RESULT {json}", that loadtests/bench_http.py parses.
local M = {}
local threads = {}

function M.setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function M.count(status)
  counts[status] = (counts[status] or 0) + 1
end

function M.done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts") or {}) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local statuses = {}
  for status, n in pairs(merged) do
    statuses[#statuses + 1] = string.format('"%d": %d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, ' ..
    '"statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, table.concat(statuses, ", ")))
end

return M
