-- Fills the memory backend for the memory scenario: PUT /kv/key-1 ... /kv/key-N, each with a
-- body of BENCH_VALUE_BYTES bytes (application/octet-stream), then stops once every request
-- sent is answered. N is BENCH_FILL_COUNT. A connection that asks for a request after the N-th
-- gets GET /ping instead (several connections may pass the delay() check at once).
--
-- Once every request sent is answered, it prints "BENCH_JSON {...}" (the count of 204 answers
-- and of anything else) and exits; wrk would otherwise idle until its -d is over. Single
-- thread only (-t1): the counts live in the thread's own Lua state.

local count = assert(tonumber(os.getenv("BENCH_FILL_COUNT")), "BENCH_FILL_COUNT is not set")
local size = assert(tonumber(os.getenv("BENCH_VALUE_BYTES")), "BENCH_VALUE_BYTES is not set")
local body = string.rep("v", size)
local headers = { ["Content-Type"] = "application/octet-stream" }

-- Globals, so that done() can read them from each thread (thread:get).
sent, answered, stored, failed, pings = 0, 0, 0, 0, 0

function delay()
  if sent >= count then return 3600000 end
  return 0
end

-- wrk calls request() once before sending anything, to see how many requests it returns
-- (script_verify_request): that call must not use up a key.
local verified = false

function request()
  if not verified then
    verified = true
    return wrk.format("GET", "/ping")
  end
  if sent >= count then
    pings = pings + 1
    return wrk.format("GET", "/ping")
  end
  sent = sent + 1
  return wrk.format("PUT", "/kv/key-" .. sent, headers, body)
end

local function report(socket_errors)
  io.write(string.format(
    'BENCH_JSON {"stored":%d,"failed":%d,"sent":%d,"answered":%d,"pings":%d,"socketErrors":%d}\n',
    stored, failed, sent, answered, pings, socket_errors))
  io.flush()
end

function response(status)
  answered = answered + 1
  if status == 204 then stored = stored + 1
  elseif status ~= 200 then failed = failed + 1 end
  -- Every request sent is answered: done. wrk itself would idle until -d is over.
  if sent >= count and answered == sent + pings then
    report(0)
    os.exit(0)
  end
end

-- Reached only when some request was never answered (wrk ran out its -d).
function done(summary)
  local e = summary.errors
  report(e.connect + e.read + e.write + e.timeout)
end
