-- wrk script: each request picks its Host uniformly at random among the N bench tenants.
-- BENCH_TENANTS = N (default 1000); BENCH_HOST_FMT = host pattern for tenant i (default
-- "t%06d.bench.local", the names `tenantry-bench-setup tenants` creates). The path is the one
-- in the URL given to wrk. Requests are formatted once in init(); per request: one random().
local n = tonumber(os.getenv("BENCH_TENANTS") or "1000")
local fmt = os.getenv("BENCH_HOST_FMT") or "t%06d.bench.local"
local prepared = {}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("seed", 4242 + threads)
end

function init(args)
  math.randomseed(seed or 4242)
  for i = 1, n do
    prepared[i] = wrk.format("GET", wrk.path, { ["Host"] = string.format(fmt, i) })
  end
end

function request()
  return prepared[math.random(n)]
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d non2xx=%d errors=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
