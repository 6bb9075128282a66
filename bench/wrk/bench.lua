-- One route, one static request, 64 connections: the script every HTTP run of the bench uses
-- (Purple's scenarios and the bare Deno.serve baseline alike, so wrk does the same work for
-- both). The path comes from the URL; the rest from environment variables, read when the
-- script loads (wrk decides whether a script has a delay() hook before it calls init()):
--
--   BENCH_METHOD     GET (default) or PUT
--   BENCH_BODY_FILE  a file whose bytes are the request body
--   BENCH_HEADERS    "Name: value" lines
--   BENCH_DRAIN_MS   if set, each connection stops sending after this many milliseconds and
--                    the requests in flight finish while wrk idles to the end of -d: every
--                    request sent is then answered and counted, which the exact write checks
--                    need (a plain run abandons up to one request per connection when it stops)
--
-- done() prints one line, "BENCH_JSON {...}", that bench/_wrk.ts reads.

wrk.method = os.getenv("BENCH_METHOD") or "GET"

local body_file = os.getenv("BENCH_BODY_FILE")
if body_file then
  local file = assert(io.open(body_file, "rb"))
  wrk.body = file:read("*a")
  file:close()
end

for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

local drain_ms = tonumber(os.getenv("BENCH_DRAIN_MS") or "")
if drain_ms then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock, bench_timespec *tp);
  ]]
  local spec = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, spec) -- CLOCK_MONOTONIC
    return tonumber(spec.tv_sec) * 1000 + tonumber(spec.tv_nsec) / 1e6
  end
  local deadline
  function init()
    deadline = now_ms() + drain_ms
  end
  function delay()
    if now_ms() < deadline then return 0 end
    return 3600000 -- Send nothing more; wrk ends at -d.
  end
end

function done(summary, latency)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"durationUs":%d,"connectErrors":%d,"readErrors":%d,' ..
    '"writeErrors":%d,"statusErrors":%d,"timeouts":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
