#!/usr/bin/env bash
# Isolation side by side: the adversarial traffic of the demo's isolation_stress (reads, writes,
# writes that then fail, panics, clients that disconnect mid-query, savepoint rollbacks of a
# switch to another tenant, statement_timeout, Tokio timeouts) plus hostile Host headers, against
# each Rust alternative (peers-stress), and Tenantry's own isolation_stress test, one after the
# other. Prints each one's violations: cross-tenant rows seen, requests served as another tenant,
# rows written under another tenant, rolled-back rows that survived.
#
# Usage: bench/peers/isolation.sh [REQUESTS]   (default 20000 per app; 200 tenants, 32 in flight)
# Knobs (env): BENCH_PG=postgres://postgres@127.0.0.1:5432  PORT_BASE=8131  SKIP_TENANTRY=0
#   CONCURRENCY=32  TENANTS=200  NO_BUILD=0 (1: use the binaries already in target/release)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
REQUESTS="${1:-20000}"
TENANTS="${TENANTS:-200}"
CONCURRENCY="${CONCURRENCY:-32}"
BENCH_PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
PORT_BASE="${PORT_BASE:-8131}"
OUT="$ROOT/bench/peers/out/isolation-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
BIN="$ROOT/target/release"
echo "== building (release)"
[ "${NO_BUILD:-0}" = 1 ] || (cd "$ROOT/bench/peers" && CARGO_TARGET_DIR="$ROOT/target" cargo build --release -q)

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_ok() {  # port host path
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" "http://127.0.0.1:$1$3" || true)" = 200 ] && return 0
    sleep 0.2
  done
  echo "server on :$1 did not answer 200 for $2$3" >&2; exit 1
}

echo "== databases ($TENANTS tenants each)"
"$BIN/peers-rls" setup --database-url "$BENCH_PG/peers_rls_stress" --count "$TENANTS"
"$BIN/peers-rustango" setup --database-url "$BENCH_PG/peers_rustango_stress" --count "$TENANTS" \
  --project-dir "$ROOT/target/peers-rustango-project"

run() {  # label app port command...
  local label="$1" app="$2" port="$3"; shift 3
  "$@" > "$OUT/$label.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  wait_ok "$port" "t000001.bench.local" /api/whoami
  echo "== $label: $REQUESTS requests"
  "$BIN/peers-stress" --app "$app" --addr "127.0.0.1:$port" --database-url "$BENCH_PG/peers_${app}_stress" \
    --tenants "$TENANTS" --requests "$REQUESTS" --concurrency "$CONCURRENCY" | tee "$OUT/$label.stress.txt" || true
  kill "$pid" 2>/dev/null || true
}

run rls rls "$PORT_BASE" "$BIN/peers-rls" serve --database-url "$BENCH_PG/peers_rls_stress" \
  --addr "127.0.0.1:$PORT_BASE"
# rustango keeps its generated session keys in the working directory.
cd "$ROOT/target"
run rustango rustango "$((PORT_BASE + 1))" "$BIN/peers-rustango" serve \
  --database-url "$BENCH_PG/peers_rustango_stress" --addr "127.0.0.1:$((PORT_BASE + 1))"
run rustango_scoped rustango "$((PORT_BASE + 2))" "$BIN/peers-rustango" serve \
  --mode scoped --scoped-pools 16 --scoped-connections 2 \
  --database-url "$BENCH_PG/peers_rustango_stress" --addr "127.0.0.1:$((PORT_BASE + 2))"

if [ "${SKIP_TENANTRY:-0}" != 1 ]; then
  echo "== tenantry: cargo test -p tenantry-demo --test isolation_stress ($REQUESTS requests)"
  (cd "$ROOT" && TENANTRY_STRESS_REQUESTS="$REQUESTS" cargo test -q -p tenantry-demo --test isolation_stress \
    -- --nocapture 2>&1 | tee "$OUT/tenantry.txt") || true
fi
echo
echo "== summary ($OUT)"
grep -h 'VIOLATIONS TOTAL' "$OUT"/*.stress.txt || true
if [ -f "$OUT/tenantry.txt" ]; then
  grep -hE 'test result|\[stress\] after the run' "$OUT/tenantry.txt" | sed 's/^/[tenantry] /' || true
fi
