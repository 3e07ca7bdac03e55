#!/usr/bin/env bash
# What mounting the operator console costs tenant routes: the demo with the console (the
# default, at /admin/) and without it (TENANTRY_DEMO_CONSOLE=0), side by side in one run.
#
# Usage: bench/http/console_cost.sh       (after `cargo build --release -p tenantry-demo`)
#
# One database (tenantry_console_bench, recreated), 20 tenants signed up through the demo, wrk
# on GET /api/notes spread over them; the same release binary started per mode, alternating
# (console, no_console, console, ...), ROUNDS times. Prints per run req/s, mean latency and
# the server's CPU time per request (utime+stime from /proc, the figure least disturbed by
# other load), then the medians and the ratios no_console / console (1.00 = no cost).
#
# Knobs (env): DURATION=10 ROUNDS=3 PORT=8392 BENCH_PG=postgres://postgres@127.0.0.1:5432
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${BIN:-$ROOT/target/release/tenantry-demo}"
DURATION="${DURATION:-10}" ROUNDS="${ROUNDS:-3}" PORT="${PORT:-8392}"
BENCH_PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
DB="$BENCH_PG/tenantry_console_bench"
[ -x "$BIN" ] || { echo "build first: cargo build --release -p tenantry-demo"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed"; exit 1; }
psql "$BENCH_PG/postgres" -qc "DROP DATABASE IF EXISTS tenantry_console_bench" \
  -c "CREATE DATABASE tenantry_console_bench"
LUA="$(mktemp)" RESULTS="$(mktemp)"
trap 'rm -f "$LUA" "$RESULTS"' EXIT
cat > "$LUA" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/notes", { ["Host"] = "c" .. (n % 20) .. ".localhost" })
end
LUA
seeded=0
run() { # name, env...
  local name=$1; shift
  env DATABASE_URL="$DB" TENANTRY_DEMO_ADDR="127.0.0.1:$PORT" TENANTRY_DEMO_RATE_LIMITS=0 \
    TENANTRY_DEMO_ADMIN_PASSWORD=bench RUST_LOG=warn "$@" "$BIN" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 150); do
    curl -s -o /dev/null -H 'host: localhost' "http://127.0.0.1:$PORT/api/tenants" && break
    sleep 0.2
  done
  # The console is there or not, as asked.
  local admin
  admin=$(curl -s -o /dev/null -w '%{http_code}' -H 'host: localhost' "http://127.0.0.1:$PORT/admin/")
  case "$name:$admin" in
    console:303 | no_console:404) ;;
    *) echo "$name: GET /admin/ answered $admin"; kill "$pid"; exit 1 ;;
  esac
  if [ $seeded = 0 ]; then
    for i in $(seq 0 19); do
      curl -s -o /dev/null -X POST -H 'host: localhost' -d "name=C$i&subdomain=c$i" \
        "http://127.0.0.1:$PORT/signup"
    done
    seeded=1
  fi
  wrk -t1 -c16 -d5s -s "$LUA" "http://127.0.0.1:$PORT/" >/dev/null # warm-up
  local t0 t1 out
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  out=$(wrk -t1 -c16 -d"${DURATION}s" -s "$LUA" "http://127.0.0.1:$PORT/")
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  local reqs rps lat non2xx cpu
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  lat=$(echo "$out" | awk '/Latency/{print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
  cpu=$(echo "($t1-$t0)*1000000/$(getconf CLK_TCK)/$reqs" | bc -l)
  printf '%s\treq/s=%s\tlat_avg=%s\tcpu_us_per_req=%.1f%s\n' "$name" "$rps" "$lat" "$cpu" \
    "${non2xx:+	non-2xx=$non2xx}"
  printf '%s\t%s\t%s\n' "$name" "$rps" "$cpu" >> "$RESULTS"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
for _ in $(seq "$ROUNDS"); do
  run console
  run no_console TENANTRY_DEMO_CONSOLE=0
done
# Medians per mode, then the ratios.
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
med = {}
for mode in ("console", "no_console"):
    rps = [float(r[1]) for r in rows if r[0] == mode]
    cpu = [float(r[2]) for r in rows if r[0] == mode]
    med[mode] = (statistics.median(rps), statistics.median(cpu))
    print(f"median {mode}: req/s={med[mode][0]:.0f} cpu_us_per_req={med[mode][1]:.1f} ({len(rps)} runs)")
(rc, cc), (rn, cn) = med["console"], med["no_console"]
print(f"ratio no_console/console: req/s {rn / rc:.3f}, cpu per request {cn / cc:.3f} "
      "(1.00 = the console costs tenant routes nothing)")
PY
