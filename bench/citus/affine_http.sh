#!/usr/bin/env bash
# The demo over HTTP on a Citus cluster: through the coordinator vs node-affine routing
# (TENANTRY_DEMO_NODE_AFFINE=1), two demo servers on the same database, alternating rounds of
# wrk on /api/notes and /api/whoami spread uniformly over the tenants. Prints requests/s per
# round and the ratio node-affine / coordinator.
#
#   CITUS_DIR=/tmp/citus-affine CITUS_PORT=9800 scripts/citus.sh start
#   CITUS=postgres://postgres@127.0.0.1:9800/tenantry bench/citus/affine_http.sh [TENANTS] [ROUNDS] [SECONDS]
#
# TENANTS (default 1000) are signed up through the demo if missing (aff1..affN at
# affN.localhost, 4 at a time). DEMO_BIN defaults to target/release/tenantry-demo, else
# target/debug/tenantry-demo (a debug build spends most of each request in the app: it
# understates what the database path changes).
set -euo pipefail
TENANTS="${1:-1000}"
ROUNDS="${2:-3}"
SECONDS_PER_RUN="${3:-10}"
CITUS="${CITUS:-postgres://postgres@127.0.0.1:9700/tenantry}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${DEMO_BIN:-}"
if [ -z "$BIN" ]; then
  BIN="$ROOT/target/release/tenantry-demo"
  [ -x "$BIN" ] || BIN="$ROOT/target/debug/tenantry-demo"
fi
command -v wrk >/dev/null || { echo "wrk is needed" >&2; exit 1; }
echo "demo: $BIN"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
start() { # $1 port, then env assignments
  local port="$1"; shift
  env DATABASE_URL="$CITUS" TENANTRY_DEMO_ADDR="127.0.0.1:$port" TENANTRY_DEMO_RATE_LIMITS=0 \
    TENANTRY_DEMO_METRICS=0 RUST_LOG=warn TENANTRY_DEMO_REDIS_URL= "$@" "$BIN" >"/tmp/affine_http_$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 120); do
    curl -s -o /dev/null -H 'host: localhost' "http://127.0.0.1:$port/api/tenants" && return 0
    sleep 1
  done
  echo "the demo on $port did not start: /tmp/affine_http_$port.log" >&2
  exit 1
}
COORD=8931
AFFINE=8932
start "$COORD"
start "$AFFINE" TENANTRY_DEMO_NODE_AFFINE=1

have=$(curl -s -H 'host: localhost' "http://127.0.0.1:$COORD/api/tenants" | { grep -oE '"aff[0-9]+"' || true; } | sort -u | wc -l)
if [ "$have" -lt "$TENANTS" ]; then
  echo "signing up tenants aff1..aff$TENANTS (have $have)"
  start_s=$(date +%s)
  seq 1 "$TENANTS" | xargs -P 4 -I{} curl -s -o /dev/null -X POST -H 'host: localhost' \
    -d "name=Aff{}&subdomain=aff{}" "http://127.0.0.1:$COORD/signup"
  echo "signed up in $(( $(date +%s) - start_s )) s"
fi
# A note in each tenant (one request each, through the coordinator's server).
seq 1 "$TENANTS" | xargs -P 4 -I{} curl -s -o /dev/null -X POST -H 'host: aff{}.localhost' \
  -H 'content-type: application/json' -d '{"title":"bench","body":"b"}' "http://127.0.0.1:$COORD/api/notes"

export BENCH_TENANTS="$TENANTS" BENCH_HOST_FMT="aff%d.localhost"
run() { # $1 port, $2 path -> requests/s
  wrk -t1 -c16 -d"${SECONDS_PER_RUN}s" -s "$ROOT/bench/http/hosts.lua" "http://127.0.0.1:$1$2" \
    | awk '/Requests\/sec/ {print $2}'
}
for path in /api/notes /api/whoami; do
  run "$COORD" "$path" >/dev/null # warm-up (placements, resolutions, connections)
  run "$AFFINE" "$path" >/dev/null
  c_sum=0; a_sum=0
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then c=$(run "$COORD" "$path"); a=$(run "$AFFINE" "$path")
    else a=$(run "$AFFINE" "$path"); c=$(run "$COORD" "$path"); fi
    echo "$path round $r: coordinator $c req/s, node-affine $a req/s"
    c_sum=$(python3 -c "print($c_sum + $c)"); a_sum=$(python3 -c "print($a_sum + $a)")
  done
  python3 -c "print(f'$path: node-affine / coordinator = {$a_sum / $c_sum:.2f} (mean over $ROUNDS rounds of ${SECONDS_PER_RUN}s, $TENANTS tenants, 16 connections)')"
done
