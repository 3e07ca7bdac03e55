#!/usr/bin/env bash
# Tenant creation and a one-column migration over N tenants, rustango's provisioning against
# Tenantry's, in one run: `peers-rustango provision` (rustango's provision_tenant, one tenant after
# the other, then migrate_tenants_dyn with nothing to do and with one added column) and
# `tenantry-bench-provision` (Tenantry's create_tenant and fleet migrate: jobs 1, i.e. one schema
# after the other as rustango's runner, then the default jobs), each in a fresh database of its
# own, the same `notes` tenant table. Prints a table of the RESULT lines.
#
# Usage: bench/peers/fleet.sh [N]   (default 1000)   BENCH_PG=postgres://postgres@127.0.0.1:5432
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
N="${1:-1000}"
BENCH_PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
OUT="$ROOT/bench/peers/out/fleet-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
echo "== building (release)"
(cd "$ROOT/bench/peers" && CARGO_TARGET_DIR="$ROOT/target" cargo build --release -q)
(cd "$ROOT" && cargo build --release -q -p tenantry-demo -p tenantry-bench-control)  # as bench/http/run.sh
BIN="$ROOT/target/release"
cd "$ROOT/target"  # rustango keeps its generated session keys in the working directory
echo "== rustango: $N tenants"
"$BIN/peers-rustango" provision --database-url "$BENCH_PG/peers_fleet_rustango" --count "$N" \
  --project-dir "$ROOT/target/peers-rustango-provision" | tee "$OUT/rustango.txt"
echo "== tenantry: $N tenants (add a column with jobs 1)"
"$BIN/tenantry-bench-provision" --database-url "$BENCH_PG/peers_fleet_tenantry" --count "$N" --jobs 1 \
  | tee "$OUT/tenantry.txt"
echo "== tenantry: $N tenants (add a column with the default jobs, 2 x cores)"
"$BIN/tenantry-bench-provision" --database-url "$BENCH_PG/peers_fleet_tenantry" --count "$N" \
  --jobs "$((2 * $(nproc)))" | tee "$OUT/tenantry_jobs.txt"
for db in peers_fleet_rustango peers_fleet_tenantry; do
  psql "$BENCH_PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
done
echo
grep -h '^RESULT' "$OUT"/*.txt | tee "$OUT/results.txt"
