#!/usr/bin/env bash
# The demo's GET /api/notes and GET /api/whoami at N tenants: Tenantry on plain PostgreSQL
# ("tenantry_plain"), Tenantry through a Citus coordinator with 2 workers on the same machine
# ("tenantry_citus_coord"), and, with NODE_AFFINE=1, the demo with TENANTRY_DEMO_NODE_AFFINE=1 on the same
# Citus database ("tenantry_citus_affine"). Release builds, alternating rounds, the same wrk load
# generator (bench/http/hosts.lua), Host uniform and Zipf (s=1) over the N tenants. Prints req/s,
# p50, p99, the demo's CPU per request, the database's CPU per request (the bench database's
# backends on every node) and the ratios to plain; then each node's catalog (relations,
# pg_attribute rows, pg_catalog bytes, shards and shell tables) and the memory of the backends
# serving the bench database (RssAnon and Pss from /proc) after MEM_PASSES passes over all hosts.
#
#   bench/citus/notes.sh [N]          (default 1000; e.g. `bench/citus/notes.sh 20000`)
#
# Knobs (env): ROUNDS=3 DURATION=10 (s per wrk run) WARMUP=15 (s of unrecorded load per server)
#   WRK_THREADS=1 WRK_CONNS=16 DISTS="uniform zipf" (BENCH_ZIPF_S=1) ENDPOINTS="/api/notes /api/whoami"
#   MEM_PASSES=3 (passes of GET /api/notes over every host per server, before the backends' memory is
#     read: the same requests on every side; then the wrk warm-up and the rounds)
#   NODE_AFFINE=0 (1: also the node-affine demo; skipped with a message if the binary doesn't know
#     TENANTRY_DEMO_NODE_AFFINE)
#   CITUS_DIR=/tmp/tenantry-citusbench CITUS_PORT=9760 (the private Citus cluster, started with
#     scripts/citus.sh when not running, nodes on CITUS_PORT..+2; the plain node is a private
#     PostgreSQL 15 cluster in CITUS_DIR/plain on CITUS_PORT+3 with the Citus nodes' settings
#     minus Citus; both stopped at the end if this script started them; database
#     tenantry_citusbench_<N> on both, kept for reruns; CLEAN=1 destroys both clusters at the end)
#   PLAIN_PG= (e.g. postgres://postgres@127.0.0.1:5432: an existing server as the plain node)
#   SETUP_BULK=auto (1: the bench-only bulk setup, many tenants per transaction; auto: N > 10000)
#   BULK_BATCH=50 BULK_CONCURRENCY=4 CREATE_CONCURRENCY=4 PORT_BASE=8161 (plain, +1 coord, +2 affine)
#   NO_BUILD=0 (1: use the release binaries already built) CARGO_TARGET_DIR (where they are)
# Results: bench/citus/out/<time>/ (raw wrk output, results.tsv, catalog.tsv, memory.tsv, summary.md).
set -euo pipefail
export TENANTRY_DEMO_RATE_LIMITS=0 # wrk is far above a plan's rate limits
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/bench/citus"
HTTP="$ROOT/bench/http"
N="${1:-1000}"
ROUNDS="${ROUNDS:-3}" DURATION="${DURATION:-10}" WARMUP="${WARMUP:-15}"
WRK_THREADS="${WRK_THREADS:-1}" WRK_CONNS="${WRK_CONNS:-16}"
DISTS="${DISTS:-uniform zipf}" ENDPOINTS="${ENDPOINTS:-/api/notes /api/whoami}"
NODE_AFFINE="${NODE_AFFINE:-0}" MEM_PASSES="${MEM_PASSES:-3}"
PLAIN_DIR="${CITUS_DIR:-/tmp/tenantry-citusbench}/plain"
BENCH_PG="${PLAIN_PG:-postgres://postgres@127.0.0.1:$((${CITUS_PORT:-9760} + 3))}"
export CITUS_DIR="${CITUS_DIR:-/tmp/tenantry-citusbench}" CITUS_PORT="${CITUS_PORT:-9760}"
export CITUS_DB="${DB_NAME:-tenantry_citusbench_$N}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PORT_BASE="${PORT_BASE:-8161}"
DB_NAME="${DB_NAME:-tenantry_citusbench_$N}"
PLAIN_URL="$BENCH_PG/$DB_NAME"
CITUS_URL="postgres://postgres@127.0.0.1:$CITUS_PORT/$DB_NAME"
PLAIN_PORT="${BENCH_PG##*:}"; PLAIN_PORT="${PLAIN_PORT%%/*}"
for p in $PORT_BASE $((PORT_BASE + 1)) $((PORT_BASE + 2)); do
  if ss -Hltn "sport = :$p" | grep -q .; then echo "port $p is in use (set PORT_BASE)" >&2; exit 1; fi
done
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
OUT="$HERE/out/$(date -u +%Y%m%dT%H%M%SZ)_N$N"
mkdir -p "$OUT"
psql_at() { local port="$1"; shift; "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$DB_NAME" "$@"; }

BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "== building (release) into $BIN"
  (cd "$ROOT" && cargo build --release -q -p tenantry-demo -p tenantry-bench-control)
fi

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# The Citus cluster and the plain node: started (and later stopped) here unless already running.
STARTED=0 PLAIN_STARTED=0
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$CITUS_PORT" || STARTED=1
"$ROOT/scripts/citus.sh" start | tail -1
if [ -z "${PLAIN_PG:-}" ]; then
  if [ ! -f "$PLAIN_DIR/PG_VERSION" ]; then
    mkdir -p "$PLAIN_DIR"; [ "$(id -u)" = 0 ] && chown postgres "$PLAIN_DIR"
    as_pg "$PG_BIN/initdb" -D "$PLAIN_DIR" -U postgres --auth=trust -E UTF8 >/dev/null
    # scripts/citus.sh's node settings, without Citus.
    cat >> "$PLAIN_DIR/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PLAIN_PORT
unix_socket_directories = '$PLAIN_DIR'
max_connections = 300
max_worker_processes = 32
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PLAIN_DIR" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PLAIN_DIR" -l "$PLAIN_DIR/log" -w start >/dev/null
    PLAIN_STARTED=1
  fi
  echo "plain node: 127.0.0.1:$PLAIN_PORT ($PLAIN_DIR)"
fi
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${CLEAN:-0}" = 1 ]; then
    if [ -z "${PLAIN_PG:-}" ]; then
      as_pg "$PG_BIN/pg_ctl" -D "$PLAIN_DIR" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$PLAIN_DIR"
    else
      "$PG_BIN/dropdb" --if-exists -h 127.0.0.1 -p "$PLAIN_PORT" -U postgres "$DB_NAME" || true
    fi
    "$ROOT/scripts/citus.sh" destroy || true
  else
    [ "$STARTED" = 1 ] && { "$ROOT/scripts/citus.sh" stop || true; }
    [ "$PLAIN_STARTED" = 1 ] && { as_pg "$PG_BIN/pg_ctl" -D "$PLAIN_DIR" -m fast -w stop >/dev/null || true; }
  fi
}
trap cleanup EXIT
WORKERS=$(psql_at "$CITUS_PORT" -tAc "SELECT string_agg(nodeport::text, ' ' ORDER BY nodeport) FROM pg_dist_node \
  WHERE noderole = 'primary' AND groupid <> 0")
CITUS_NODES="$CITUS_PORT $WORKERS"

{
  echo "# bench/citus/notes.sh $N  $(date -u +%FT%TZ)  git $(cd "$ROOT" && git rev-parse --short HEAD)"
  echo "# ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP wrk -t$WRK_THREADS -c$WRK_CONNS DISTS=\"$DISTS\" BENCH_ZIPF_S=${BENCH_ZIPF_S:-1}"
  echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(wrk --version 2>&1 | head -1)"
  echo "# plain: $PLAIN_URL ($("$PG_BIN/psql" -X "$BENCH_PG/postgres" -tAc 'SHOW server_version'))"
  echo "# citus: $CITUS_URL, workers $WORKERS (Citus $(psql_at "$CITUS_PORT" -tAc "SELECT extversion FROM pg_extension WHERE extname = 'citus'"))"
} | tee "$OUT/header.txt"

# Tenants t000001..tN, 10 notes each, on both.
BULK="${SETUP_BULK:-auto}"; [ "$BULK" = auto ] && { [ "$N" -gt 10000 ] && BULK=1 || BULK=0; }
setup() { # name url nodes...
  local name="$1" url="$2"; shift 2
  local t0; t0=$(date +%s)
  if [ "$BULK" = 1 ]; then
    "$BIN/tenantry-bench-setup" tenants --database-url "$url" --count "$N" --bulk --batch "${BULK_BATCH:-50}" \
      --concurrency "${BULK_CONCURRENCY:-4}" | tee "$OUT/setup_$name.txt"
  else
    "$BIN/tenantry-bench-setup" tenants --database-url "$url" --count "$N" \
      --concurrency "${CREATE_CONCURRENCY:-4}" | tee "$OUT/setup_$name.txt"
  fi
  echo "  $name setup: $(($(date +%s) - t0)) s" | tee -a "$OUT/setup_$name.txt"
  # ANALYZE of the tables never analyzed (made now, or by an earlier, cut run); not VACUUM, whose
  # every run scans pg_class (vac_update_datfrozenxid): quadratic in the tenants. On Citus,
  # node by node and locally: the coordinator's own tables and each worker's shards (an ANALYZE of a
  # distributed table is propagated to its shard, one round trip per table: minutes at 40,000).
  local port
  for port in "$@"; do
    local filter="n.nspname !~ '^t[0-9]{6}$'"
    [ "$name" = plain ] && filter="true"
    [ "$port" != "$1" ] && filter="n.nspname ~ '^t[0-9]{6}$' AND c.relname ~ '_[0-9]+$'"
    PGOPTIONS="-c citus.override_table_visibility=off" psql_at "$port" -tA > /dev/null <<SQL &
SELECT format('ANALYZE %I.%I', n.nspname, c.relname) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_stat_all_tables s ON s.relid = c.oid
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND s.last_analyze IS NULL AND s.last_autoanalyze IS NULL AND $filter
\gexec
SQL
  done
  wait
  for port in "$@"; do psql_at "$port" -c CHECKPOINT; done
}
echo "== N=$N: tenants on plain PostgreSQL"
setup plain "$PLAIN_URL" "$PLAIN_PORT"
echo "== N=$N: tenants on Citus"
setup citus "$CITUS_URL" $CITUS_NODES
psql_at "$CITUS_PORT" -tAc "SELECT 'tenant schemas per node: ' || string_agg(nodeport || '=' || c, ', ') FROM \
  (SELECT nodeport, count(*) c FROM citus_shards WHERE table_name::text LIKE '%.notes' GROUP BY 1 ORDER BY 1) s" \
  | tee -a "$OUT/header.txt"

# Each node's catalog, before the servers start.
printf 'system\tport\trole\tschemas\trelations\tpg_attribute_rows\tcatalog_bytes\tpg_dist_bytes\tdb_bytes\ttenant_tables\tshards\n' > "$OUT/catalog.tsv"
catalog() { # system port role
  # Citus hides shards from pg_class unless citus.override_table_visibility is off (a mere
  # placeholder setting on plain PostgreSQL).
  PGOPTIONS="-c citus.override_table_visibility=off" psql_at "$2" -tA -F $'\t' -c "SELECT '$1', $2, '$3',
    (SELECT count(*) FROM pg_namespace WHERE nspname ~ '^t[0-9]{6}$'),
    (SELECT count(*) FROM pg_class), (SELECT count(*) FROM pg_attribute),
    (SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relnamespace = 'pg_catalog'::regnamespace AND relkind = 'r'),
    (SELECT coalesce(sum(pg_total_relation_size(oid)), 0) FROM pg_class WHERE relnamespace = 'pg_catalog'::regnamespace
       AND relkind = 'r' AND relname LIKE 'pg_dist%'),
    pg_database_size(current_database()),
    (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname ~ '^t[0-9]{6}$' AND c.relkind = 'r' AND c.relname !~ '_[0-9]+$'),
    (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname ~ '^t[0-9]{6}$' AND c.relkind = 'r' AND c.relname ~ '_[0-9]+$')" >> "$OUT/catalog.tsv"
}
catalog plain "$PLAIN_PORT" plain
catalog citus "$CITUS_PORT" coordinator
for w in $WORKERS; do catalog citus "$w" worker; done

echo "== N=$N: servers"
start_demo() { # name port url extra-env...
  local name="$1" port="$2" url="$3"; shift 3
  env "$@" DATABASE_URL="$url" TENANTRY_DEMO_ADDR="127.0.0.1:$port" RUST_LOG=warn \
    "$BIN/tenantry-demo" > "$OUT/demo_$name.log" 2>&1 &
  PIDS+=("$!"); SERVERS+=("$name:$port:$!")
}
SERVERS=()
start_demo tenantry_plain "$PORT_BASE" "$PLAIN_URL"
start_demo tenantry_citus_coord $((PORT_BASE + 1)) "$CITUS_URL"
if [ "$NODE_AFFINE" = 1 ]; then
  if grep -q TENANTRY_DEMO_NODE_AFFINE "$BIN/tenantry-demo"; then
    start_demo tenantry_citus_affine $((PORT_BASE + 2)) "$CITUS_URL" TENANTRY_DEMO_NODE_AFFINE=1
  else
    echo "NODE_AFFINE=1: $BIN/tenantry-demo does not know TENANTRY_DEMO_NODE_AFFINE (node-affine routing" \
      "is not in this build): tenantry_citus_affine SKIPPED" | tee -a "$OUT/header.txt"
  fi
fi

wait_ok() { # port host path
  for _ in $(seq 1 900); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" "http://127.0.0.1:$1$3" || true)" = 200 ] && return 0
    sleep 0.2
  done
  echo "server on :$1 did not answer 200 for $2$3" >&2; exit 1
}
LAST=$(printf 't%06d' "$N")
for s in "${SERVERS[@]}"; do
  IFS=: read -r name port _ <<< "$s"
  wait_ok "$port" "$LAST.bench.local" /api/whoami
  # Sanity: the last tenant and 20 random ones answer their own 10 notes; an unknown host 404.
  for i in $N $(python3 -c "import random; print(' '.join(str(random.randint(1, $N)) for _ in range(20)))"); do
    t=$(printf 't%06d' "$i")
    curl -s -H "Host: $t.bench.local" "http://127.0.0.1:$port/api/notes" | python3 -c \
      "import json,sys; d=json.load(sys.stdin); assert len(d)==10 and all('of $t' in n['title'] for n in d), ('$name', '$t', d)"
  done
  curl -s -o /dev/null -w "  sanity: $name: 21 tenants answer their own 10 notes; unknown host -> %{http_code}\n" \
    -H "Host: nobody.bench.local" "http://127.0.0.1:$port/api/notes"
  # Every host once (the resolution cache holds all N); then the same MEM_PASSES passes of
  # /api/notes over every host for each server, so the backends' memory is read after the same
  # requests on both sides.
  "$BIN/tenantry-bench-setup" warm --addr "127.0.0.1:$port" --count "$N" | sed "s/^/  $name whoami /"
  for _ in $(seq "$MEM_PASSES"); do
    "$BIN/tenantry-bench-setup" warm --addr "127.0.0.1:$port" --count "$N" --path /api/notes | sed "s/^/  $name notes /"
  done
done

# The backends serving the bench database on each node, after the passes.
printf 'system\tport\trole\tpid\tapplication\trss_anon_kb\tpss_kb\tcpu_ticks\n' > "$OUT/memory.tsv"
memory() { # system port role
  psql_at "$2" -tA -F ' ' -c "SELECT pid, CASE WHEN application_name LIKE 'citus_internal%' THEN 'citus_internal' \
    ELSE coalesce(nullif(application_name, ''), 'app') END FROM pg_stat_activity WHERE datname = current_database() \
    AND backend_type = 'client backend' AND pid <> pg_backend_pid()" | while read -r pid app; do
    local anon pss ticks
    anon=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
    pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null) || continue
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || continue
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$pid" "$app" "$anon" "$pss" "$ticks" >> "$OUT/memory.tsv"
  done
}
memory plain "$PLAIN_PORT" plain
memory citus "$CITUS_PORT" coordinator
for w in $WORKERS; do memory citus "$w" worker; done

# Unrecorded load of each server before the rounds.
for s in "${SERVERS[@]}"; do
  IFS=: read -r _ port _ <<< "$s"
  BENCH_TENANTS="$N" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${WARMUP}s" -s "$HTTP/hosts.lua" \
    "http://127.0.0.1:$port/api/notes" > /dev/null
done

# CPU ticks of the bench database's client backends on the given nodes: "port pid ticks" lines.
db_snap() {
  local port pid
  for port in "$@"; do
    for pid in $(psql_at "$port" -tAc "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
      AND backend_type = 'client backend' AND pid <> pg_backend_pid()"); do
      awk -v port="$port" -v pid="$pid" '{print port, pid, $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true
    done
  done
}
# CPU per request from two snapshots: "total node1=..,node2=.." (us).
db_cpu() { # before after requests
  python3 - "$1" "$2" "$3" "$(getconf CLK_TCK)" <<'PY'
import sys
def snap(text):
    return {(l.split()[0], l.split()[1]): int(l.split()[2]) for l in text.splitlines() if l.strip()}
a, b, reqs, hz = snap(sys.argv[1]), snap(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
per = {}
for k, t in b.items():
    per[k[0]] = per.get(k[0], 0) + t - a.get(k, 0)
us = {p: v * 1e6 / hz / max(reqs, 1) for p, v in sorted(per.items())}
print(f"{sum(us.values()):.1f} " + ",".join(f"{p}={v:.1f}" for p, v in us.items()))
PY
}
nodes_of() { case "$1" in tenantry_plain) echo "$PLAIN_PORT";; *) echo "$CITUS_NODES";; esac; }

printf 'n\tround\tserver\tendpoint\trps\tp50_ms\tp99_ms\trequests\tnon2xx\terrors\tcpu_us_per_req\tdb_cpu_us_per_req\tdb_cpu_per_node\n' > "$OUT/results.tsv"
load() { # round server port endpoint pid dist
  local dist="$6" label="$4"
  [ "$dist" = uniform ] || label="$4 $dist"
  local raw="$OUT/wrk_r$1_$2_${4//\//_}_$dist.txt" t0 t1 s0 s1 line
  # shellcheck disable=SC2046
  s0=$(db_snap $(nodes_of "$2")); t0=$(awk '{print $14 + $15}' "/proc/$5/stat")
  BENCH_DIST="$dist" BENCH_TENANTS="$N" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --latency \
    -s "$HTTP/hosts.lua" "http://127.0.0.1:$3$4" > "$raw"
  t1=$(awk '{print $14 + $15}' "/proc/$5/stat")
  # shellcheck disable=SC2046
  s1=$(db_snap $(nodes_of "$2"))
  line=$(grep '^RESULT' "$raw")
  get() { echo "$line" | tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }
  local reqs cpu db
  reqs=$(get requests)
  cpu=$(python3 -c "print(f'{($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / max($reqs, 1):.1f}')")
  db=$(db_cpu "$s0" "$s1" "$reqs")
  echo "  round=$1 $2 $label: $line cpu_us_per_req=$cpu db_cpu_us_per_req=${db% *} (${db#* })"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$N" "$1" "$2" "$label" "$(get rps)" "$(get p50_ms)" \
    "$(get p99_ms)" "$reqs" "$(get non2xx)" "$(get errors)" "$cpu" "${db% *}" "${db#* }" >> "$OUT/results.tsv"
}
echo "== N=$N: $ROUNDS rounds of ${DURATION}s per server, endpoint and distribution (load average $(cut -d' ' -f1 /proc/loadavg))"
for round in $(seq 1 "$ROUNDS"); do
  order=("${SERVERS[@]}")
  # Rotate which server goes first, so slow drifts hit all alike.
  for ((k = 0; k < (round - 1) % ${#order[@]}; k++)); do order=("${order[@]:1}" "${order[0]}"); done
  for dist in $DISTS; do
    for ep in $ENDPOINTS; do
      for s in "${order[@]}"; do
        IFS=: read -r name port pid <<< "$s"
        load "$round" "$name" "$port" "$ep" "$pid" "$dist"
      done
    done
  done
done


{ cat "$OUT/header.txt"; echo
  python3 "$HTTP/summarize.py" "$OUT/results.tsv" | awk '!done { print } /^$/ { done = 1 }'
  python3 "$HERE/summarize.py" "$OUT"; } | tee "$OUT/summary.md"
echo "results in $OUT"
