#!/usr/bin/env bash
# What the coordinator hop costs: the demo's notes query (a tenant transaction: BEGIN; SET LOCAL
# search_path; SELECT the latest 10 notes; COMMIT) on plain PostgreSQL, through a Citus
# coordinator to the worker holding the tenant's schema, and sent directly to that worker
# (node-affine: Citus 11+ syncs its metadata to the workers, so a worker plans and serves a
# query on a distributed table itself, here locally), alternating, same load generator
# (pgbench, prepared statements), one run. Prints tps per round and the ratios to plain.
#
#   scripts/citus.sh start                       # the local cluster (coordinator :9700)
#   bench/citus/coordinator_hop.sh [ROUNDS] [SECONDS] [CLIENTS]
#
# PLAIN (default postgres://postgres@127.0.0.1:5432/tenantry_hop_bench, created if missing) and
# CITUS (default postgres://postgres@127.0.0.1:9700/tenantry, the database scripts/citus.sh made)
# are database URLs; the schema `hop_bench` (10 notes) is made again in both. The worker's URL
# is CITUS with the host and port of the node holding `hop_bench` (from Citus's metadata).
#
# CHECK=1 adds a tenant check at the start of each transaction, the one each mode would need:
# the tenant's advisory lock (shared) and the schema's identity, as its OID on plain PostgreSQL
# and through the coordinator (Tenantry's fast check), and as its colocation id on the worker
# (OIDs differ per node; the colocation id, from the worker's copy of `pg_dist_schema`, is the
# same on every node and survives a rename: see docs/citus.md, node-affine routing).
#
# CHECK=2: the checks Tenantry sends: its fast check on plain PostgreSQL and through the
# coordinator (the advisory lock, shared, then the schema's OID), and on the worker the exact
# form of node-affine routing's check (`tenant_node_begin_sql`): the tenant's row of the node
# epochs, locked FOR SHARE in the worker's own shard of the reference table, and the schema's
# colocation id. Each transaction is one of TENANTS tenants (default 1,000; its lock key, its
# epoch row); TENANTS=1 puts every client on one tenant (one hot row). LOCK=KEY makes the row
# lock FOR KEY SHARE instead (to compare); LOCK=ADVISORY is the check Tenantry sends now: the
# tenant's advisory lock shared on the worker, then the epoch read without a row lock (nothing
# written per transaction).
#
# SSLMODE=disable (default) is added to the three URLs: Citus turns `ssl = on` on its nodes, so
# with libpq's default (`prefer`) only the Citus sides would use TLS (runs before session 9 did;
# SSLMODE=prefer measures that: in session 9 it made no difference beyond the noise).
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

# The node holding hop_bench: the placement of its table's one shard.
node="$("$PG_BIN/psql" -X -q "$CITUS" -tAc "SELECT n.nodename || ':' || n.nodeport FROM pg_dist_shard s \
  JOIN pg_dist_placement p ON p.shardid = s.shardid JOIN pg_dist_node n ON n.groupid = p.groupid \
  WHERE s.logicalrelid = 'hop_bench.notes'::regclass AND n.noderole = 'primary'")"
[ -n "$node" ] || { echo "hop_bench is not distributed (is $CITUS a Citus coordinator?)" >&2; exit 1; }
# Same URL, the worker's host:port: postgres://user@HOST:PORT/db.
prefix="${CITUS%%@*}@"; db="/${CITUS##*/}"
DIRECT="${prefix}${node}${db}"
echo "hop_bench is on $node; direct = $DIRECT"
"$PG_BIN/psql" -X -q "$DIRECT" -tAc "SELECT count(*) FROM hop_bench.notes" | grep -qx 10 \
  || { echo "the worker can't serve hop_bench (no metadata sync?)" >&2; exit 1; }

# The check per mode (empty without CHECK=1); the expected values are read once here.
check_oid="" check_citus="" check_coloc=""
if [ "${CHECK:-0}" = 1 ]; then
  oid() { "$PG_BIN/psql" -X -q "$1" -tAc "SELECT 'hop_bench'::regnamespace::oid"; }
  # The lock, then the identity; a mismatch fails the transaction (the cast), as Tenantry's does.
  check() { echo "SELECT pg_advisory_xact_lock_shared(1952804468, 1), (CASE WHEN $1 = $2 THEN 'true' ELSE 'changed' END)::boolean"; }
  check_oid=$(check "to_regnamespace('hop_bench')::oid" "$(oid "$PLAIN")")
  check_citus=$(check "to_regnamespace('hop_bench')::oid" "$(oid "$CITUS")")
  coloc=$("$PG_BIN/psql" -X -q "$CITUS" -tAc "SELECT colocationid FROM pg_dist_schema WHERE schemaid = 'hop_bench'::regnamespace")
  check_coloc=$(check "(SELECT colocationid FROM pg_catalog.pg_dist_schema WHERE schemaid = to_regnamespace('hop_bench'))" "$coloc")
  echo "check on the worker: $check_coloc"
fi
TENANTS="${TENANTS:-1000}"
if [ "${CHECK:-0}" = 2 ]; then
  oid() { "$PG_BIN/psql" -X -q "$1" -tAc "SELECT 'hop_bench'::regnamespace::oid"; }
  # Tenantry's fast check (the registry-version comparison left out: a sequence read).
  fast() { echo "SELECT CASE WHEN pg_advisory_xact_lock_shared(1952804468, :t) IS NULL THEN NULL ELSE (CASE WHEN to_regnamespace('\"hop_bench\"')::oid = $1 THEN 'true' ELSE 'changed' END)::boolean END"; }
  check_oid=$(fast "$(oid "$PLAIN")")
  check_citus=$(fast "$(oid "$CITUS")")
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$CITUS" <<SQL
DROP TABLE IF EXISTS public.hop_bench_epochs;
CREATE TABLE public.hop_bench_epochs (tenant_id bigint PRIMARY KEY, epoch bigint NOT NULL DEFAULT 1);
SELECT create_reference_table('public.hop_bench_epochs');
INSERT INTO public.hop_bench_epochs (tenant_id) SELECT generate_series(1, $TENANTS);
SQL
  shard=$("$PG_BIN/psql" -X -q "$CITUS" -tAc "SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'public.hop_bench_epochs'::regclass")
  coloc=$("$PG_BIN/psql" -X -q "$CITUS" -tAc "SELECT colocationid FROM pg_dist_schema WHERE schemaid = 'hop_bench'::regnamespace")
  lock="FOR SHARE"; pre=""
  [ "${LOCK:-}" = KEY ] && lock="FOR KEY SHARE"
  [ "${LOCK:-}" = ADVISORY ] && { lock=""; pre="SELECT pg_advisory_xact_lock_shared(1952804468, :t);
"; }
  check_coloc="${pre}SELECT (CASE WHEN (SELECT e.epoch FROM \"public\".\"hop_bench_epochs_$shard\" e WHERE e.tenant_id = :t $lock) IS DISTINCT FROM 1 THEN 'changed' ELSE (CASE WHEN (SELECT d.colocationid FROM pg_catalog.pg_dist_schema d WHERE d.schemaid = to_regnamespace('\"hop_bench\"')) = $coloc THEN 'true' ELSE 'changed' END) END)::boolean"
  echo "check on the worker: $check_coloc"
fi
scripts="$(mktemp -d)"
script_for() { # $1 file name, $2 check statement (or empty): a pgbench script
  { echo "\\set t random(1, $TENANTS)"; echo "BEGIN;"; [ -n "$2" ] && echo "$2;"
    echo "SET LOCAL search_path TO hop_bench, public;"
    echo "SELECT id, title, body FROM notes ORDER BY id DESC LIMIT 10;"
    echo "COMMIT;"; } > "$scripts/$1"
}
script_for plain "$check_oid"
script_for coordinator "$check_citus"
script_for direct "$check_coloc"
declare -A script=([$PLAIN]=plain [$CITUS]=coordinator [$DIRECT]=direct)
run() { # $1 URL -> tps
  "$PG_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -f "$scripts/${script[$1]}" \
    "$1?sslmode=${SSLMODE:-disable}" 2>/dev/null \
    | awk '/^tps/ {print $3; exit}'
}
run "$PLAIN" >/dev/null # warm-up
run "$CITUS" >/dev/null
run "$DIRECT" >/dev/null
plain_sum=0; citus_sum=0; direct_sum=0
for r in $(seq 1 "$ROUNDS"); do
  # Rotate the order each round, so no mode always runs first (or last) on a busy machine.
  case $((r % 3)) in
    1) p=$(run "$PLAIN"); c=$(run "$CITUS"); d=$(run "$DIRECT") ;;
    2) c=$(run "$CITUS"); d=$(run "$DIRECT"); p=$(run "$PLAIN") ;;
    0) d=$(run "$DIRECT"); p=$(run "$PLAIN"); c=$(run "$CITUS") ;;
  esac
  echo "round $r: plain ${p} tps, citus through the coordinator ${c} tps, citus direct to the worker ${d} tps"
  plain_sum=$(python3 -c "print($plain_sum + $p)"); citus_sum=$(python3 -c "print($citus_sum + $c)")
  direct_sum=$(python3 -c "print($direct_sum + $d)")
done
python3 -c "print(f'coordinator/plain = {$citus_sum / $plain_sum:.2f}, direct/plain = {$direct_sum / $plain_sum:.2f}, direct/coordinator = {$direct_sum / $citus_sum:.2f} (mean over $ROUNDS rounds, $CLIENTS clients, ${SECONDS_PER_RUN}s each)')"
rm -rf "$scripts"
"$PG_BIN/psql" -X -q "$CITUS" -c "DROP SCHEMA hop_bench CASCADE"
"$PG_BIN/psql" -X -q "$PLAIN" -c "DROP SCHEMA hop_bench CASCADE"
"$PG_BIN/psql" -X -q "$CITUS" -c "DROP TABLE IF EXISTS public.hop_bench_epochs"
