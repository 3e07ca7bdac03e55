#!/usr/bin/env bash
# What the coordinator hop costs: the demo's notes query (a tenant transaction: BEGIN; SET LOCAL
# search_path; SELECT the latest 10 notes; COMMIT) through a Citus coordinator to the worker
# holding the tenant's schema, against the same on plain PostgreSQL, alternating, same load
# generator (pgbench, prepared statements), one run. Prints tps per round and the ratio.
#
#   scripts/citus.sh start                       # the local cluster (coordinator :9700)
#   bench/citus/coordinator_hop.sh [ROUNDS] [SECONDS] [CLIENTS]
#
# PLAIN (default postgres://postgres@127.0.0.1:5432/tenantry_hop_bench, created if missing) and
# CITUS (default postgres://postgres@127.0.0.1:9700/tenantry, the database scripts/citus.sh made)
# are database URLs; the schema `hop_bench` (10 notes) is made again in both.
set -euo pipefail
ROUNDS="${1:-3}"
SECONDS_PER_RUN="${2:-10}"
CLIENTS="${3:-8}"
PLAIN="${PLAIN:-postgres://postgres@127.0.0.1:5432/tenantry_hop_bench}"
CITUS="${CITUS:-postgres://postgres@127.0.0.1:9700/tenantry}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

setup() { # $1 database URL, $2 "citus" or ""
  local shard=""
  [ -n "$2" ] && shard="SET citus.enable_schema_based_sharding TO on;"
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$1" <<SQL
DROP SCHEMA IF EXISTS hop_bench CASCADE;
$shard
CREATE SCHEMA hop_bench;
CREATE TABLE hop_bench.notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  title text NOT NULL, body text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO hop_bench.notes (title, body) SELECT 'note ' || i, 'body ' || i FROM generate_series(1, 10) i;
SQL
}

plain_db="${PLAIN##*/}"
"$PG_BIN/psql" -X -q "${PLAIN%/*}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$plain_db'" | grep -q 1 \
  || "$PG_BIN/psql" -X -q "${PLAIN%/*}/postgres" -c "CREATE DATABASE \"$plain_db\""
setup "$PLAIN" ""
setup "$CITUS" citus

script="$(mktemp)"
cat > "$script" <<'SQL'
BEGIN;
SET LOCAL search_path TO hop_bench, public;
SELECT id, title, body FROM notes ORDER BY id DESC LIMIT 10;
COMMIT;
SQL
run() { # $1 URL -> tps
  "$PG_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -f "$script" "$1" 2>/dev/null \
    | awk '/^tps/ {print $3; exit}'
}
run "$PLAIN" >/dev/null # warm-up
run "$CITUS" >/dev/null
plain_sum=0; citus_sum=0
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then p=$(run "$PLAIN"); c=$(run "$CITUS"); else c=$(run "$CITUS"); p=$(run "$PLAIN"); fi
  echo "round $r: plain ${p} tps, citus (through the coordinator) ${c} tps"
  plain_sum=$(python3 -c "print($plain_sum + $p)"); citus_sum=$(python3 -c "print($citus_sum + $c)")
done
python3 -c "print(f'citus/plain = {$citus_sum / $plain_sum:.2f} (mean over $ROUNDS rounds, {$CLIENTS} clients, ${SECONDS_PER_RUN}s each)')"
rm -f "$script"
"$PG_BIN/psql" -X -q "$CITUS" -c "DROP SCHEMA hop_bench CASCADE"
"$PG_BIN/psql" -X -q "$PLAIN" -c "DROP SCHEMA hop_bench CASCADE"
