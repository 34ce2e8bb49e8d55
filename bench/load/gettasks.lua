-- wrk script for bench/load.py: POST /v1/gettasks, urlencoded task_id, round-robin over
-- (API key, task id) pairs read from a tab-separated file given as the first script argument:
--   wrk -c1000 -d60s -s bench/load/gettasks.lua http://127.0.0.1:PORT -- pairs.tsv
-- With WRK_COUNT_STATUS=1 in the environment a response() callback tallies status codes per
-- thread (slower: wrk then hands every response to Lua), and done() reports them. It has to be
-- decided when the script loads: wrk looks for response() in its main Lua state.
-- done() prints one line "WRKJSON {...}" with the figures (latencies in microseconds).

local requests = {}
local n, i = 0, 0
local counting = os.getenv("WRK_COUNT_STATUS") == "1"
statuses = {}  -- global: done() reads each thread's copy with thread:get
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  local path = args[1]
  for line in io.lines(path) do
    local key, task = line:match("^(%S+)\t(%S+)$")
    if key then
      n = n + 1
      requests[n] = wrk.format("POST", "/v1/gettasks", {
        ["X-API-Key"] = key,
        ["Content-Type"] = "application/x-www-form-urlencoded",
      }, "task_id=" .. task)
    end
  end
  assert(n > 0, "no key/task pairs in " .. tostring(path))
  -- Threads start at different offsets so they do not poll in lockstep.
  i = ((id or 1) * 7919) % n
end

if counting then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function request()
  i = i % n + 1
  return requests[i]
end

function done(summary, latency, requests_)
  local pct = {}
  for _, p in ipairs({50, 90, 99, 99.9}) do
    table.insert(pct, string.format('"%s":%d', tostring(p), latency:percentile(p)))
  end
  local codes = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for code, count in pairs(s) do
        codes[code] = (codes[code] or 0) + count
      end
    end
  end
  local cs = {}
  for code, count in pairs(codes) do
    table.insert(cs, string.format('"%d":%d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"percentiles":{%s}},' ..
    '"statuses":{%s}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max, table.concat(pct, ","),
    table.concat(cs, ",")))
end
