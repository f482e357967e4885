-- wrk script for protected lookups (bench/protected-lookup.sh with BENCH_CLIENT=wrk).
-- Each request is a masked view of a customer on one of a demo agent's open cases,
-- spread at random over every (token, case, customer) line of the targets file that
-- the script gives as its first argument. Prints one JSON line at the end.

local targets = {}

function init(args)
  for line in io.lines(args[1]) do
    local token, case, customer = line:match("^(%S+) (%S+) (%S+)$")
    if token then
      targets[#targets + 1] = { token = token, case = case, customer = customer }
    end
  end
  if #targets == 0 then
    error("no targets in " .. tostring(args[1]))
  end
  -- Each wrk thread runs init in its own Lua state; seed each differently.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
end

function request()
  local t = targets[math.random(#targets)]
  return wrk.format("GET", "/v1/customers/" .. t.customer, {
    ["Authorization"] = "Bearer " .. t.token,
    ["X-Custos-Case"] = t.case,
  })
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"req_per_s":%d,"p50_ms":%.2f,"p99_ms":%.2f,"requests":%d,"errors":%d}\n',
    math.floor(summary.requests / seconds), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests, failed))
end
