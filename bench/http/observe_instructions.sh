#!/usr/bin/env bash
# The exact server-side cost of Tenantry's request span and metrics, in instructions per
# request: the release demo runs under valgrind's callgrind (which counts instructions, so the
# figure does not move with other load on the machine), once per mode; after a warm-up the
# counters are zeroed, N requests of GET /api/notes (URL_PATH) are sent over 20 tenants, and the counters
# are dumped. Per request = instructions of the whole process (every thread: handlers, sqlx,
# tokio, the metrics upkeep) / N. Modes as in observe.sh: off, span_only, metrics_only, on, json;
# and no_console (the defaults with TENANTRY_DEMO_CONSOLE=0: the console's cost on tenant routes).
#
# Usage: bench/http/observe_instructions.sh [N]   (default 2000; after
#        `cargo build --release -p tenantry-demo`; needs valgrind and python3)
# Knobs (env): MODES="off on" PORT=8392 BIN=(another demo binary)
#              URL_PATH=/api/notes (or /api/whoami)
#              KEEP=DIR (keep the callgrind dumps there, for callgrind_annotate) BENCH_PG=postgres://postgres@127.0.0.1:5432
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=demo_lib.sh
. "$ROOT/bench/http/demo_lib.sh"
BIN="${BIN:-$ROOT/target/release/tenantry-demo}"
N="${1:-2000}" URL_PATH="${URL_PATH:-/api/notes}" PORT="${PORT:-8392}" MODES="${MODES:-off span_only metrics_only on json}"
BENCH_PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
DB="$BENCH_PG/tenantry_observe_insn"
[ -x "$BIN" ] || { echo "build first: cargo build --release -p tenantry-demo"; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is needed"; exit 1; }
psql "$BENCH_PG/postgres" -qc "DROP DATABASE IF EXISTS tenantry_observe_insn" \
  -c "CREATE DATABASE tenantry_observe_insn"
OUT="${KEEP:-$(mktemp -d)}"
mkdir -p "$OUT"
trap '[ -n "${KEEP:-}" ] || rm -rf "$OUT"; psql "$BENCH_PG/postgres" -qc "DROP DATABASE IF EXISTS tenantry_observe_insn" || true' EXIT

# Sends $1 requests over one keep-alive connection, round-robin over 20 tenant hosts.
send() {
  python3 - "$PORT" "$1" "$URL_PATH" <<'PY'
import http.client, sys
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for i in range(n):
    conn.request("GET", path, headers={"Host": f"m{i % 20}.localhost"})
    r = conn.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"status {r.status}")
PY
}

seeded=0
measure() { # name, env...
  local name=$1; shift
  env DATABASE_URL="$DB" TENANTRY_DEMO_ADDR="127.0.0.1:$PORT" TENANTRY_DEMO_RATE_LIMITS=0 "$@" \
    valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$OUT/$name.%p" "$BIN" >/dev/null 2>"$OUT/$name.log" &
  local pid=$!
  wait_demo "$PORT" 600 0.5 || true
  if [ $seeded = 0 ]; then
    seed_tenants "$PORT" M
    seeded=1
  fi
  send 300 # warm-up: caches, pool, prepared statements
  callgrind_control -z "$pid" >/dev/null
  send "$N"
  callgrind_control -d "$pid" >/dev/null
  sleep 1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # The dump after zeroing is the file with the highest part number.
  local dump ir
  dump=$(ls "$OUT/$name.$pid".* | sort -t. -k3 -n | tail -1)
  ir=$(awk '/^summary:|^totals:/{print $2; exit}' "$dump")
  printf '%s\tinstructions_per_request=%.0f\n' "$name" "$(echo "$ir/$N" | bc -l)"
  echo "$name $(echo "$ir/$N" | bc -l)" >> "$OUT/summary"
}
for mode in $MODES; do
  case $mode in
    off) measure off RUST_LOG=warn TENANTRY_DEMO_METRICS=0 ;;
    span_only) measure span_only TENANTRY_DEMO_METRICS=0 ;;
    metrics_only) measure metrics_only RUST_LOG=warn ;;
    on) measure on ;;
    json) measure json TENANTRY_DEMO_LOG=json ;;
    no_console) measure no_console TENANTRY_DEMO_CONSOLE=0 ;;  # defaults without the console
    *) echo "unknown mode $mode"; exit 1 ;;
  esac
done
awk 'NR==1{base=$2; name=$1} $1=="off"{base=$2; name="off"} {v[NR]=$1; c[NR]=$2} END { if (base) for (i=1;i<=NR;i++)
  printf "%s\t%.0f instructions/request\t%.3f of %s (%+.0f)\n", v[i], c[i], c[i]/base, name, c[i]-base }' "$OUT/summary"
