-- wrk script for bench/http/noisy.sh: each request goes to one of the bench tenants
-- BENCH_FIRST..BENCH_LAST (uniformly at random); BENCH_DELAY_MS > 0 paces each connection
-- (about 1000 / BENCH_DELAY_MS requests per second per connection, less the latency).
local first = tonumber(os.getenv("BENCH_FIRST") or "1")
local last = tonumber(os.getenv("BENCH_LAST") or "20")
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local fmt = os.getenv("BENCH_HOST_FMT") or "t%06d.bench.local"
local prepared = {}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("seed", 777 + threads)
end

function init(args)
  math.randomseed(seed or 777)
  for i = first, last do
    prepared[#prepared + 1] = wrk.format("GET", wrk.path, { ["Host"] = string.format(fmt, i) })
  end
end

function request()
  return prepared[math.random(#prepared)]
end

function delay()
  return pause
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d errors=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
