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
# shellcheck source=demo_lib.sh
. "$ROOT/bench/http/demo_lib.sh"
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
  wait_demo "$PORT" 150 0.2 || true
  # The console is there or not, as asked.
  local admin
  admin=$(curl -s -o /dev/null -w '%{http_code}' -H 'host: localhost' "http://127.0.0.1:$PORT/admin/")
  case "$name:$admin" in
    console:303 | no_console:404) ;;
    *) echo "$name: GET /admin/ answered $admin"; kill "$pid"; exit 1 ;;
  esac
  if [ $seeded = 0 ]; then
    seed_tenants "$PORT" C
    seeded=1
  fi
  local reqs rps lat non2xx cpu
  wrk_measure "$pid" "$PORT" "$LUA" "$DURATION"
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
