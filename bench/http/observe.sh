#!/usr/bin/env bash
# Overhead of Tenantry's request span and metrics in the demo, side by side in one run.
#
# Usage: bench/http/observe.sh            (after `cargo build --release -p tenantry-demo`)
#
# One database (tenantry_observe_bench, recreated), 20 tenants signed up through the demo, wrk
# on GET /api/notes spread over them; the same release binary started per mode, alternating,
# ROUNDS times:
#   off           RUST_LOG=warn TENANTRY_DEMO_METRICS=0  (span disabled, no recorder)
#   span_only     TENANTRY_DEMO_METRICS=0                (INFO span under the text formatter)
#   metrics_only  RUST_LOG=warn                          (Prometheus recorder, span disabled)
#   on            (defaults: span + metrics)
#   json          TENANTRY_DEMO_LOG=json                 (span + metrics + one JSON line/request)
# Prints req/s, mean latency and the server's CPU time per request (utime+stime from /proc,
# the figure least disturbed by other load). The library-level "feature off" case (nothing
# compiled in) needs a build without `tenantry/metrics`; `off` above still runs the label
# budget lookup and no-op metric calls.
#
# At the end: each mode's mean req/s and CPU per request over the rounds, and its ratio to `off`.
# The exact per-request cost (instructions, unaffected by other load): observe_instructions.sh.
#
# Knobs (env): DURATION=10 ROUNDS=2 PORT=8391 BENCH_PG=postgres://postgres@127.0.0.1:5432
#              MODES="off span_only metrics_only on json" (a subset, in the order to alternate)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=demo_lib.sh
. "$ROOT/bench/http/demo_lib.sh"
BIN="${BIN:-$ROOT/target/release/tenantry-demo}"
DURATION="${DURATION:-10}" ROUNDS="${ROUNDS:-2}" PORT="${PORT:-8391}"
BENCH_PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
DB="$BENCH_PG/tenantry_observe_bench"
[ -x "$BIN" ] || { echo "build first: cargo build --release -p tenantry-demo"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed"; exit 1; }
psql "$BENCH_PG/postgres" -qc "DROP DATABASE IF EXISTS tenantry_observe_bench" \
  -c "CREATE DATABASE tenantry_observe_bench"
LUA="$(mktemp)"
trap 'rm -f "$LUA"' EXIT
cat > "$LUA" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/notes", { ["Host"] = "m" .. (n % 20) .. ".localhost" })
end
LUA
seeded=0
run() { # name, env...
  local name=$1; shift
  env DATABASE_URL="$DB" TENANTRY_DEMO_ADDR="127.0.0.1:$PORT" TENANTRY_DEMO_RATE_LIMITS=0 "$@" "$BIN" >/dev/null 2>&1 &
  local pid=$!
  wait_demo "$PORT" 150 0.2 || true
  if [ $seeded = 0 ]; then
    seed_tenants "$PORT" M
    seeded=1
  fi
  local reqs rps lat non2xx cpu
  wrk_measure "$pid" "$PORT" "$LUA" "$DURATION"
  printf '%s\treq/s=%s\tlat_avg=%s\tcpu_us_per_req=%.1f\n' "$name" "$rps" "$lat" "$cpu"
  echo "$name $rps $cpu" >> "$SUMMARY"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
MODES="${MODES:-off span_only metrics_only on json}"
SUMMARY="$(mktemp)"
trap 'rm -f "$LUA" "$SUMMARY"' EXIT
for _ in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    case $mode in
      off) run off RUST_LOG=warn TENANTRY_DEMO_METRICS=0 ;;
      span_only) run span_only TENANTRY_DEMO_METRICS=0 ;;
      metrics_only) run metrics_only RUST_LOG=warn ;;
      on) run on ;;
      json) run json TENANTRY_DEMO_LOG=json ;;
      *) echo "unknown mode $mode"; exit 1 ;;
    esac
  done
done
echo "== mean over $ROUNDS round(s)"
awk '{ n[$1]++; rps[$1]+=$2; cpu[$1]+=$3; if (!($1 in seen)) { seen[$1]=1; order[++k]=$1 } }
  END { base = ("off" in n) ? rps["off"]/n["off"] : 0; basecpu = ("off" in n) ? cpu["off"]/n["off"] : 0;
    for (i=1; i<=k; i++) { m=order[i]; r=rps[m]/n[m]; c=cpu[m]/n[m];
      printf "%s\treq/s=%.0f\tcpu_us_per_req=%.1f", m, r, c;
      if (base > 0) printf "\tthroughput/off=%.3f\tcpu/off=%.3f", r/base, c/basecpu;
      printf "\n" } }' "$SUMMARY"
