-- Fills the memory backend for the memory scenario: PUT /kv/key-1 ... /kv/key-N, each with a
-- body of BENCH_VALUE_BYTES bytes (application/octet-stream), then stops once every request
-- sent is answered. N is BENCH_FILL_COUNT. A connection that asks for a request after the N-th
-- gets GET /ping instead (several connections may pass the delay() check at once).
--
-- done() prints "BENCH_JSON {...}" with the count of 204 answers and of anything else.

local count = assert(tonumber(os.getenv("BENCH_FILL_COUNT")), "BENCH_FILL_COUNT is not set")
local size = assert(tonumber(os.getenv("BENCH_VALUE_BYTES")), "BENCH_VALUE_BYTES is not set")
local body = string.rep("v", size)
local headers = { ["Content-Type"] = "application/octet-stream" }

local sent, answered, stored, failed = 0, 0, 0, 0
local pings = 0

function delay()
  if sent >= count then return 3600000 end
  return 0
end

function request()
  if sent >= count then
    pings = pings + 1
    return wrk.format("GET", "/ping")
  end
  sent = sent + 1
  return wrk.format("PUT", "/kv/key-" .. sent, headers, body)
end

function response(status)
  answered = answered + 1
  if status == 204 then stored = stored + 1
  elseif status ~= 200 then failed = failed + 1 end
  if sent >= count and answered == sent + pings then wrk.thread:stop() end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary)
  local total_stored, total_failed = 0, 0
  for _, thread in ipairs(threads) do
    total_stored = total_stored + thread:get("stored")
    total_failed = total_failed + thread:get("failed")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"stored":%d,"failed":%d,"requests":%d,"durationUs":%d,"socketErrors":%d}\n',
    total_stored, total_failed, summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout))
end
