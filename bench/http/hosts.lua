-- wrk script: each request picks its Host among the N bench tenants, uniformly at random or,
-- with BENCH_DIST=zipf, Zipf-skewed (tenant i drawn with probability proportional to 1/i^s,
-- BENCH_ZIPF_S = s, default 1: with 1,000 tenants the top 10 take 39% of the requests, with
-- 100,000 the top 10 take 24% and the top 1,000 62%).
-- BENCH_TENANTS = N (default 1000); BENCH_HOST_FMT = host pattern for tenant i (default
-- "t%06d.bench.local", the names `tenantry-bench-setup tenants` creates). The path is the one
-- in the URL given to wrk. Requests are formatted once in init(); per request: one random()
-- (and for Zipf a binary search over the precomputed cumulative weights).
local n = tonumber(os.getenv("BENCH_TENANTS") or "1000")
local fmt = os.getenv("BENCH_HOST_FMT") or "t%06d.bench.local"
local dist = os.getenv("BENCH_DIST") or "uniform"
local s = tonumber(os.getenv("BENCH_ZIPF_S") or "1")
local prepared = {}
local cdf = nil
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
  if dist == "zipf" then
    cdf = {}
    local total = 0
    for i = 1, n do
      total = total + 1 / (i ^ s)
      cdf[i] = total
    end
    for i = 1, n do
      cdf[i] = cdf[i] / total
    end
  elseif dist ~= "uniform" then
    error("BENCH_DIST must be uniform or zipf, not " .. dist)
  end
end

local function zipf()
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

function request()
  if cdf then
    return prepared[zipf()]
  end
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
