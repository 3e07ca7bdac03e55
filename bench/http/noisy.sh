#!/usr/bin/env bash
# Noisy neighbour (issue 14): 20 tenants of the demo under steady load, then one of them floods;
# the other tenants' throughput and p99 with and without the per-tenant limits.
#
#   bench/http/noisy.sh            (the lead runs it on a quiet machine; takes ~4 x DURATION)
#
# Three runs of the 19 quiet tenants (t000002..t000020, QUIET_CONNS connections paced at about
# RATE requests per second each, GET /api/notes):
#   1. alone                          (the reference: no flood)
#   2. + t000001 flooding, no limits  (TENANTRY_DEMO_RATE_LIMITS=0)
#   3. + t000001 flooding, limits on  (the Free plan's 20/s, bursts of 40, and
#                                      plans.max_transactions = CAP for the Free plan)
# The flood: t000001 at FLOOD times a quiet tenant's rate (FLOOD x QUIET_CONNS / 19
# connections paced like the quiet ones); UNPACED=1 makes them unpaced instead (as fast as
# answers come: a closed-loop flood far above 10x, where even cheap 429s compete for the CPU
# with the quiet tenants when wrk shares the machine). Target (issue 14): with limits, the quiet tenants keep >= 0.9 of their throughput and
# p99 <= 1.5x of run 1. Speed is never asserted in tests; this script only reports.
#
# Settings: DURATION (s, default 20), WARMUP (s, 5), RATE (per connection, 10), QUIET_CONNS (19),
# FLOOD (10), UNPACED (0), CAP (2), BENCH_PG, PORT (8121), BIN (default: a release build of this tree).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/bench/http"
DURATION="${DURATION:-20}" WARMUP="${WARMUP:-5}" RATE="${RATE:-10}" QUIET_CONNS="${QUIET_CONNS:-19}"
FLOOD="${FLOOD:-10}" CAP="${CAP:-2}" PORT="${PORT:-8121}" UNPACED="${UNPACED:-0}"
BENCH_PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
DB="$BENCH_PG/tenantry_bench_noisy"
FLOOD_CONNS=$(( (FLOOD * QUIET_CONNS + 18) / 19 ))
DELAY_MS=$(( 1000 / RATE ))
FLOOD_DELAY_MS=$DELAY_MS; [ "$UNPACED" = 1 ] && FLOOD_DELAY_MS=0
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
if ss -Hltn "sport = :$PORT" | grep -q .; then echo "port $PORT is in use (set PORT)" >&2; exit 1; fi
OUT="$HERE/out/noisy-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
if [ -z "${BIN:-}" ]; then
  echo "== building (release)"
  (cd "$ROOT" && cargo build --release -q -p tenantry-demo -p tenantry-bench-control)
  BIN="$ROOT/target/release"
fi

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== 20 bench tenants"
"$BIN/tenantry-bench-setup" tenants --database-url "$DB" --count 20 | tee "$OUT/setup.txt"

start_demo() {  # label, rate limits 0/1
  DATABASE_URL="$DB" TENANTRY_DEMO_ADDR="127.0.0.1:$PORT" RUST_LOG=warn \
    TENANTRY_DEMO_RATE_LIMITS="$2" "$BIN/tenantry-demo" > "$OUT/demo_$1.log" 2>&1 &
  DEMO=$!; PIDS+=("$DEMO")
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: t000020.bench.local' \
      "http://127.0.0.1:$PORT/api/notes" || true)" = 200 ] && return 0
    sleep 0.2
  done
  echo "the demo did not start (see $OUT/demo_$1.log)" >&2; exit 1
}
stop_demo() { kill "$DEMO"; wait "$DEMO" 2>/dev/null || true; }
quiet() {  # label, seconds
  BENCH_FIRST=2 BENCH_LAST=20 BENCH_DELAY_MS="$DELAY_MS" wrk -t1 -c"$QUIET_CONNS" -d"$2s" \
    --latency -s "$HERE/noisy.lua" "http://127.0.0.1:$PORT/api/notes" > "$OUT/quiet_$1.txt"
}
flood() {  # label, seconds
  BENCH_FIRST=1 BENCH_LAST=1 BENCH_DELAY_MS="$FLOOD_DELAY_MS" wrk -t1 -c"$FLOOD_CONNS" -d"$2s" \
    --latency -s "$HERE/noisy.lua" "http://127.0.0.1:$PORT/api/notes" > "$OUT/flood_$1.txt"
}
run() {  # label, rate limits 0/1, flood 0/1
  start_demo "$1" "$2"
  if [ "$2" = 1 ]; then
    psql "$DB" -qc "UPDATE plans SET max_transactions = $CAP WHERE code = 'free'"
    sleep 6  # the demo re-reads plan rows every 5 s
  fi
  quiet "warmup_$1" "$WARMUP"
  if [ "$3" = 1 ]; then
    flood "$1" "$DURATION" & F=$!
    quiet "$1" "$DURATION"
    wait "$F"
  else
    quiet "$1" "$DURATION"
  fi
  psql "$DB" -qc "UPDATE plans SET max_transactions = NULL WHERE code = 'free'"
  stop_demo
  echo "  $1: quiet $(grep '^RESULT' "$OUT/quiet_$1.txt")"
  [ "$3" = 1 ] && echo "  $1: flood $(grep '^RESULT' "$OUT/flood_$1.txt")"
  return 0
}

{
  echo "# bench/http/noisy.sh $(date -u +%FT%TZ); $(nproc) cores; git $(cd "$ROOT" && git rev-parse --short HEAD)"
  echo "# DURATION=$DURATION RATE=$RATE/conn QUIET_CONNS=$QUIET_CONNS FLOOD=${FLOOD}x ($FLOOD_CONNS conns, delay ${FLOOD_DELAY_MS} ms) CAP=$CAP"
} | tee "$OUT/header.txt"
echo "== 1. quiet tenants alone";            run alone 0 0
echo "== 2. + flood, no limits";             run nolimits 0 1
echo "== 3. + flood, limits on";             run limits 1 1

python3 - "$OUT" <<'PY' | tee "$OUT/summary.txt"
import sys, re
out = sys.argv[1]
def res(name):
    line = next(l for l in open(f"{out}/{name}.txt") if l.startswith("RESULT"))
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}
base = res("quiet_alone")
print(f"quiet tenants alone: {base['rps']:.1f} req/s, p99 {base['p99_ms']:.2f} ms")
for label in ("nolimits", "limits"):
    q, f = res(f"quiet_{label}"), res(f"flood_{label}")
    tr, pr = q["rps"] / base["rps"], q["p99_ms"] / base["p99_ms"]
    ok = "meets" if tr >= 0.9 and pr <= 1.5 else "misses"
    print(f"flood, {label:8}: quiet {q['rps']:.1f} req/s ({tr:.2f}x), p99 {q['p99_ms']:.2f} ms "
          f"({pr:.2f}x; {ok} the >=0.9x / <=1.5x target); flooder {f['rps']:.1f} req/s, "
          f"{int(f['non2xx'])} non-2xx of {int(f['requests'])}")
PY
