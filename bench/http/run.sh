#!/usr/bin/env bash
# HTTP benchmark: the Tenantry demo (release build) against a single-tenant control app (and,
# with PEERS=1, the Rust alternatives of bench/peers: rustango's schema mode and row-level security).
#
# Usage: bench/http/run.sh [N ...]        (default: 1000; e.g. `bench/http/run.sh 1000 100000`)
#
# For each N: N tenants t000001..tN (domain tNNNNNN.bench.local, 10 notes each) in database
# tenantry_bench_<N> (created once, reused by later runs); the demo binary and the control app
# (same handlers, one schema, same pool size 16) are started; Tenantry's resident memory is read
# before and after one request per host; then wrk loads GET /api/notes and GET /api/whoami with
# the Host spread uniformly over the N tenants (hosts.lua), alternating the servers, ROUNDS
# times. Results: bench/http/out/<time>/ (raw wrk output, results.tsv, rss.tsv, summary.md).
#
# Knobs (env): DURATION=10 (s per wrk run) ROUNDS=3 WRK_THREADS=1 WRK_CONNS=16
#   CONTROL_TX=0 (1: also a control that runs the notes query in a transaction)
#   NOPLANS=0 (1: also the demo with TENANTRY_DEMO_TENANT_PLANS=0, i.e. one prepared statement
#     shared by all tenants, to show what per-tenant plans are worth; server "tenantry_noplans")
#   SHARDS= (k: also the demo with TENANTRY_DEMO_POOL_SHARDS=k, server "tenantry_shards_k"; the
#     demo's default is 8 tenant-affine connection shards, SHARDS=1 shows the single shared pool)
#   WARMUP=15 (s of unrecorded load per server before the rounds: fills the pools, the
#     resolution cache and each connection's prepared statements, per tenant for Tenantry)
#   DJANGO=0 (1: also the django-tenants baseline, see README; N <= 9999 only)
#   BENCH_PG=postgres://postgres@127.0.0.1:5432 (server for the bench databases)
#   CREATE_CONCURRENCY=4 (tenants created at once during setup)
#   DEMO_PRELOAD= (e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2: LD_PRELOAD for the demo, to
#     compare allocators; glibc malloc by default)
#   PORT_BASE=8101 (tenantry, control, control_tx, django-tenants on PORT_BASE..+3)
#   SETUP_BULK=auto (1: bench-only bulk setup, many tenants per transaction; auto: when N > 10000)
#   BASELINE= (a git revision, e.g. HEAD~3: also the demo built at that revision, server
#     "tenantry_baseline", on a database of its own, tenantry_bench_<N>_baseline, set up by that
#     revision's bench setup: a before/after ratio of a change in one run. Built in a git
#     worktree under target/baseline)
#   PEERS=0 (1: also the Rust alternatives built from bench/peers (its own Cargo workspace):
#     "rls" (peers-rls: one shared notes table, FORCE ROW LEVEL SECURITY, app.tenant_id set per
#     transaction) on database peers_rls_<N>, and "rustango" (peers-rustango: rustango 0.62's
#     schema mode, TenantPools::acquire on the shared registry pool) on peers_rustango_<N>; both
#     pools 16, the same 10 notes per tenant, seeded in bulk; see bench/peers/README.md)
#   PEER_SET="rls rustango" (with PEERS=1: which alternatives; "rls" alone skips rustango's
#     100,000-schema database, 1.3 million relations that also compete for the page cache)
#   RUSTANGO_SCOPED=0 (1, with PEERS=1: also "rustango_scoped", rustango's TenantScope extractor
#     and its per-tenant pools, RUSTANGO_SCOPED_POOLS=16 of RUSTANGO_SCOPED_CONNS=1 connection)
#   NO_BUILD=0 (1: use the binaries already in target/release)
#   DISTS=uniform (with PEERS=1: "uniform zipf"): the Host distributions of hosts.lua to load
#     with, each a row of its own ("/api/notes zipf"); Zipf's exponent: BENCH_ZIPF_S=1
#   WARM_CACHE=0 (1: read the Tenantry database's files into the OS page cache before the load,
#     bench/http/page_cache.sh warm). Either way the share of it in the page cache is printed
#     before and after the load (page_cache.txt): at 100,000 tenants (11.7 GB) a database mostly
#     outside the page cache makes /api/notes wait on the disk, ~10x slower (bench/http/RESULTS.md)
#
# Besides req/s and latency, every wrk run records the server's CPU time per request (utime +
# stime of the server process(es) from /proc, divided by the requests served): far less
# sensitive to other load on the machine than req/s.
set -euo pipefail
# wrk drives far more than a plan's 20 requests per second per tenant: per-plan rate limits
# off for every demo server started here (a baseline binary older than them ignores it).
export TENANTRY_DEMO_RATE_LIMITS=0
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/bench/http"
NS=("$@"); [ ${#NS[@]} -gt 0 ] || NS=(1000)
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
WRK_THREADS="${WRK_THREADS:-1}"
WRK_CONNS="${WRK_CONNS:-16}"
CONTROL_TX="${CONTROL_TX:-0}"
NOPLANS="${NOPLANS:-0}"
SHARDS="${SHARDS:-}"
WARMUP="${WARMUP:-15}"
DJANGO="${DJANGO:-0}"
BENCH_PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
PORT_BASE="${PORT_BASE:-8101}"  # servers on PORT_BASE .. PORT_BASE+3
TENANTRY_PORT=$PORT_BASE CONTROL_PORT=$((PORT_BASE + 1)) CONTROL_TX_PORT=$((PORT_BASE + 2))
DJANGO_PORT=$((PORT_BASE + 3)) NOPLANS_PORT=$((PORT_BASE + 4)) SHARDS_PORT=$((PORT_BASE + 5))
BASELINE="${BASELINE:-}" BASELINE_PORT=$((PORT_BASE + 6))
PEERS="${PEERS:-0}" RUSTANGO_SCOPED="${RUSTANGO_SCOPED:-0}" PEER_SET=" ${PEER_SET:-rls rustango} "
peer() { [ "$PEERS" = 1 ] && [[ "$PEER_SET" == *" $1 "* ]]; }  # is alternative $1 in this run?
RLS_PORT=$((PORT_BASE + 7)) RUSTANGO_PORT=$((PORT_BASE + 8)) RUSTANGO_SCOPED_PORT=$((PORT_BASE + 9))
if [ "$PEERS" = 1 ]; then DISTS="${DISTS:-uniform zipf}"; else DISTS="${DISTS:-uniform}"; fi
for p in $TENANTRY_PORT $CONTROL_PORT $CONTROL_TX_PORT $DJANGO_PORT $NOPLANS_PORT $SHARDS_PORT $BASELINE_PORT \
  $RLS_PORT $RUSTANGO_PORT $RUSTANGO_SCOPED_PORT; do
  if ss -Hltn "sport = :$p" | grep -q .; then echo "port $p is in use (set PORT_BASE)" >&2; exit 1; fi
done
OUT="$HERE/out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }

echo "== building (release)"
[ "${NO_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release -q -p tenantry-demo -p tenantry-bench-control)
BIN="$ROOT/target/release"
if [ "$PEERS" = 1 ] && [ "${NO_BUILD:-0}" != 1 ]; then
  echo "== building the Rust alternatives (bench/peers, release)"
  (cd "$ROOT/bench/peers" && CARGO_TARGET_DIR="$ROOT/target" cargo build --release -q)  # the whole workspace: one feature set, one build
fi
if [ -n "$BASELINE" ]; then
  BASE_REV=$(cd "$ROOT" && git rev-parse --short "$BASELINE")
  BASE_TREE="$ROOT/target/baseline/src-$BASE_REV"
  echo "== building the baseline $BASELINE ($BASE_REV, release)"
  [ -d "$BASE_TREE" ] || (cd "$ROOT" && git worktree add -f --detach "$BASE_TREE" "$BASE_REV" >/dev/null)
  (cd "$BASE_TREE" && CARGO_TARGET_DIR="$ROOT/target/baseline/target" \
    cargo build --release -q -p tenantry-demo -p tenantry-bench-control)
  BASE_BIN="$ROOT/target/baseline/target/release"
fi

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_ok() {  # port host path
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $2" "http://127.0.0.1:$1$3" || true)" = 200 ] && return 0
    sleep 0.2
  done
  echo "server on :$1 did not answer 200 for $2$3" >&2; exit 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU ticks (utime + stime) of the given processes.
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
export -f cpu_ticks

{
  echo "# bench/http/run.sh ${NS[*]}  $(date -u +%FT%TZ)"
  echo "# PEERS=$PEERS DISTS=\"$DISTS\" BENCH_ZIPF_S=${BENCH_ZIPF_S:-1}"
  echo "# DURATION=$DURATION ROUNDS=$ROUNDS wrk -t$WRK_THREADS -c$WRK_CONNS; $(nproc) cores; $(wrk --version 2>&1 | head -1)"
  echo "# $(psql "$BENCH_PG/postgres" -tAc 'select version()')"
  echo "# git $(cd "$ROOT" && git rev-parse --short HEAD)${BASELINE:+ (baseline: $BASE_REV)}"
} | tee "$OUT/header.txt"
printf 'n\tround\tserver\tendpoint\trps\tp50_ms\tp99_ms\trequests\tnon2xx\terrors\tcpu_us_per_req\n' > "$OUT/results.tsv"
printf 'n\trss_start_kb\trss_warm_kb\trss_end_kb\twarmed\n' > "$OUT/rss.tsv"

echo "== control database"
"$BIN/tenantry-bench-setup" control --database-url "$BENCH_PG/tenantry_bench_control"

load() {  # n round server port endpoint pid dist
  local dist="${7:-uniform}" label="$5"
  [ "$dist" = uniform ] || label="$5 $dist"
  local raw="$OUT/wrk_N$1_r$2_$3_${5//\//_}_$dist.txt" line t0 t1
  t0=$(cpu_ticks "$6")
  BENCH_DIST="$dist" BENCH_TENANTS="$1" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DURATION}s" --latency \
    -s "$HERE/hosts.lua" "http://127.0.0.1:$4$5" > "$raw"
  t1=$(cpu_ticks "$6")
  line=$(grep '^RESULT' "$raw")
  get() { echo "$line" | tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }
  local cpu; cpu=$(python3 -c "print(f'{($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / $(get requests):.1f}')")
  echo "  N=$1 round=$2 $3 $label: $line cpu_us_per_req=$cpu"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$label" "$(get rps)" "$(get p50_ms)" \
    "$(get p99_ms)" "$(get requests)" "$(get non2xx)" "$(get errors)" "$cpu" >> "$OUT/results.tsv"
}

for N in "${NS[@]}"; do
  DB="$BENCH_PG/tenantry_bench_$N"
  BULK="${SETUP_BULK:-auto}"; [ "$BULK" = auto ] && { [ "$N" -gt 10000 ] && BULK=1 || BULK=0; }
  if [ "$BULK" = 1 ]; then
    echo "== N=$N: tenants (BULK bench setup: the library's clone batch, 50 tenants per transaction, 8 at a time)"
    "$BIN/tenantry-bench-setup" tenants --database-url "$DB" --count "$N" --bulk --batch 50 \
      --concurrency 8 | tee "$OUT/setup_N$N.txt"
  else
    echo "== N=$N: tenants (bench setup: the library's create_tenant, ${CREATE_CONCURRENCY:-4} at a time)"
    "$BIN/tenantry-bench-setup" tenants --database-url "$DB" --count "$N" \
      --concurrency "${CREATE_CONCURRENCY:-4}" | tee "$OUT/setup_N$N.txt"
  fi
  # Only after creating tenants (a vacuum of 100,000 schemas takes minutes).
  if ! grep -qE 'creating 0 ' "$OUT/setup_N$N.txt"; then
    vacuumdb -q --analyze -j 2 -d "$DB" 2>/dev/null || psql "$DB" -qc 'VACUUM ANALYZE' 2>/dev/null || true
  fi
  if [ -n "$BASELINE" ]; then
    echo "== N=$N: baseline tenants ($BASE_REV's bench setup, own database)"
    if [ "$BULK" = 1 ]; then
      "$BASE_BIN/tenantry-bench-setup" tenants --database-url "${DB}_baseline" --count "$N" --bulk \
        --batch 50 --concurrency 8 | tee "$OUT/setup_baseline_N$N.txt"
    else
      "$BASE_BIN/tenantry-bench-setup" tenants --database-url "${DB}_baseline" --count "$N" \
        --concurrency "${CREATE_CONCURRENCY:-4}" | tee "$OUT/setup_baseline_N$N.txt"
    fi
    if ! grep -qE 'creating 0 ' "$OUT/setup_baseline_N$N.txt"; then
      vacuumdb -q --analyze -j 2 -d "${DB}_baseline" 2>/dev/null || true
    fi
  fi
  if [ "$PEERS" = 1 ]; then
    echo "== N=$N: the alternatives' databases (bulk seed: generate_series / batched schema creation)"
    if peer rls; then
      "$BIN/peers-rls" setup --database-url "$BENCH_PG/peers_rls_$N" --count "$N" | tee -a "$OUT/setup_N$N.txt"
    fi
    if peer rustango; then
      "$BIN/peers-rustango" setup --database-url "$BENCH_PG/peers_rustango_$N" --count "$N" \
        --project-dir "$ROOT/target/peers-rustango-project" | tee -a "$OUT/setup_N$N.txt"
    fi
    if grep -qE '^rustango: creating [1-9]' "$OUT/setup_N$N.txt"; then
      vacuumdb -q --analyze -j 2 -d "$BENCH_PG/peers_rustango_$N" 2>/dev/null || true
    fi
  fi
  psql "$BENCH_PG/postgres" -qc CHECKPOINT
  if [ "${WARM_CACHE:-0}" = 1 ]; then
    echo "== N=$N: reading the database into the page cache"
    "$HERE/page_cache.sh" warm "tenantry_bench_$N" | tee -a "$OUT/page_cache.txt" || true
  fi
  { printf 'before the load: '; "$HERE/page_cache.sh" report "tenantry_bench_$N"; } | tee -a "$OUT/page_cache.txt" || true

  echo "== N=$N: servers"
  DATABASE_URL="$DB" TENANTRY_DEMO_ADDR="127.0.0.1:$TENANTRY_PORT" RUST_LOG=warn \
    LD_PRELOAD="${DEMO_PRELOAD:-}" "$BIN/tenantry-demo" > "$OUT/demo_N$N.log" 2>&1 &
  TPID=$!; PIDS+=("$TPID")
  "$BIN/tenantry-bench-control" --database-url "$BENCH_PG/tenantry_bench_control" \
    --addr "127.0.0.1:$CONTROL_PORT" > "$OUT/control_N$N.log" 2>&1 &
  CPID=$!; PIDS+=("$CPID")
  SERVERS=("tenantry:$TENANTRY_PORT:$TPID" "control:$CONTROL_PORT:$CPID")
  if [ "$CONTROL_TX" = 1 ]; then
    "$BIN/tenantry-bench-control" --tx --database-url "$BENCH_PG/tenantry_bench_control" \
      --addr "127.0.0.1:$CONTROL_TX_PORT" > "$OUT/control_tx_N$N.log" 2>&1 &
    PIDS+=("$!"); SERVERS+=("control_tx:$CONTROL_TX_PORT:$!")
  fi
  if [ "$NOPLANS" = 1 ]; then
    DATABASE_URL="$DB" TENANTRY_DEMO_ADDR="127.0.0.1:$NOPLANS_PORT" RUST_LOG=warn TENANTRY_DEMO_TENANT_PLANS=0 \
      LD_PRELOAD="${DEMO_PRELOAD:-}" "$BIN/tenantry-demo" > "$OUT/demo_noplans_N$N.log" 2>&1 &
    PIDS+=("$!"); SERVERS+=("tenantry_noplans:$NOPLANS_PORT:$!")
  fi
  if [ -n "$SHARDS" ]; then
    DATABASE_URL="$DB" TENANTRY_DEMO_ADDR="127.0.0.1:$SHARDS_PORT" RUST_LOG=warn TENANTRY_DEMO_POOL_SHARDS="$SHARDS" \
      LD_PRELOAD="${DEMO_PRELOAD:-}" "$BIN/tenantry-demo" > "$OUT/demo_shards_N$N.log" 2>&1 &
    PIDS+=("$!"); SERVERS+=("tenantry_shards_$SHARDS:$SHARDS_PORT:$!")
  fi
  if [ -n "$BASELINE" ]; then
    DATABASE_URL="${DB}_baseline" TENANTRY_DEMO_ADDR="127.0.0.1:$BASELINE_PORT" RUST_LOG=warn \
      LD_PRELOAD="${DEMO_PRELOAD:-}" "$BASE_BIN/tenantry-demo" > "$OUT/demo_baseline_N$N.log" 2>&1 &
    PIDS+=("$!"); SERVERS+=("tenantry_baseline:$BASELINE_PORT:$!")
  fi
  if peer rls; then
    "$BIN/peers-rls" serve --database-url "$BENCH_PG/peers_rls_$N" --addr "127.0.0.1:$RLS_PORT" \
      > "$OUT/rls_N$N.log" 2>&1 &
    PIDS+=("$!"); SERVERS+=("rls:$RLS_PORT:$!")
  fi
  if peer rustango; then
    (cd "$ROOT/target" && exec env RUST_LOG=warn "$BIN/peers-rustango" serve --database-url "$BENCH_PG/peers_rustango_$N" \
      --addr "127.0.0.1:$RUSTANGO_PORT" > "$OUT/rustango_N$N.log" 2>&1) &
    PIDS+=("$!"); SERVERS+=("rustango:$RUSTANGO_PORT:$!")
    if [ "$RUSTANGO_SCOPED" = 1 ]; then
      (cd "$ROOT/target" && exec env RUST_LOG=warn "$BIN/peers-rustango" serve --mode scoped \
        --scoped-pools "${RUSTANGO_SCOPED_POOLS:-16}" --scoped-connections "${RUSTANGO_SCOPED_CONNS:-1}" \
        --database-url "$BENCH_PG/peers_rustango_$N" --addr "127.0.0.1:$RUSTANGO_SCOPED_PORT" \
        > "$OUT/rustango_scoped_N$N.log" 2>&1) &
      PIDS+=("$!"); SERVERS+=("rustango_scoped:$RUSTANGO_SCOPED_PORT:$!")
    fi
  fi
  LAST=$(printf 't%06d' "$N")
  wait_ok "$TENANTRY_PORT" "$LAST.bench.local" /api/whoami
  wait_ok "$CONTROL_PORT" "$LAST.bench.local" /api/whoami
  # Sanity: the last tenant answers from its own schema with its 10 notes.
  curl -s -H "Host: $LAST.bench.local" "http://127.0.0.1:$TENANTRY_PORT/api/notes" | python3 -c \
    "import json,sys; d=json.load(sys.stdin); assert len(d)==10 and '$LAST' in d[0]['title'], d; print('  sanity: $LAST has', len(d), 'notes')"
  # And a sample of 20 random tenants answers its own notes.
  for i in $(python3 -c "import random; print(' '.join(str(random.randint(1, $N)) for _ in range(20)))"); do
    t=$(printf 't%06d' "$i")
    curl -s -H "Host: $t.bench.local" "http://127.0.0.1:$TENANTRY_PORT/api/notes" | python3 -c \
      "import json,sys; d=json.load(sys.stdin); assert len(d)==10 and all('of $t' in n['title'] for n in d), ('$t', d)"
  done
  echo "  sanity: 20 random tenants answer their own 10 notes"
  for s in "${SERVERS[@]}"; do
    IFS=: read -r name port _ <<< "$s"
    case "$name" in rls|rustango|rustango_scoped) ;; *) continue;; esac
    wait_ok "$port" "$LAST.bench.local" /api/whoami
    for i in $N $(python3 -c "import random; print(' '.join(str(random.randint(1, $N)) for _ in range(5)))"); do
      t=$(printf 't%06d' "$i")
      curl -s -H "Host: $t.bench.local" "http://127.0.0.1:$port/api/notes" | python3 -c \
        "import json,sys; d=json.load(sys.stdin); assert len(d)==10 and all('of $t' in n['title'] for n in d), ('$name', '$t', d)"
    done
    curl -s -o /dev/null -w "  sanity: $name: own notes for 6 tenants; unknown host -> %{http_code}\n" \
      -H "Host: nobody.bench.local" "http://127.0.0.1:$port/api/notes"
  done
  curl -s -o /dev/null -w '  sanity: unknown host -> %{http_code}\n' -H "Host: nobody.bench.local" "http://127.0.0.1:$TENANTRY_PORT/api/notes"

  RSS0=$(rss_kb "$TPID")
  # Restart the resolution cache from empty (the sanity requests above cached two hosts) is not
  # needed: warming requests every host once, so the cache then holds all N.
  "$BIN/tenantry-bench-setup" warm --addr "127.0.0.1:$TENANTRY_PORT" --count "$N" | tee -a "$OUT/setup_N$N.txt"
  RSS1=$(rss_kb "$TPID")
  echo "  Tenantry VmRSS: ${RSS0} kB at start, ${RSS1} kB with all $N hosts cached"

  # Warm-up of every server (connections, prepared statements), not recorded.
  for s in "${SERVERS[@]}"; do
    port="${s#*:}"; port="${port%%:*}"
    case "${s%%:*}" in tenantry_noplans|tenantry_shards_*|tenantry_baseline|rls|rustango|rustango_scoped) wait_ok "$port" "$LAST.bench.local" /api/whoami;; esac
    BENCH_TENANTS="$N" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${WARMUP}s" -s "$HERE/hosts.lua" \
      "http://127.0.0.1:$port/api/notes" > /dev/null
  done
  for round in $(seq 1 "$ROUNDS"); do
    order=("${SERVERS[@]}")
    # Alternate which server goes first, so slow drifts hit both alike.
    if [ $((round % 2)) = 0 ]; then
      rev=(); for ((i=${#order[@]}-1; i>=0; i--)); do rev+=("${order[$i]}"); done; order=("${rev[@]}")
    fi
    for dist in $DISTS; do
      for ep in /api/notes /api/whoami; do
        for s in "${order[@]}"; do
          IFS=: read -r name port pid <<< "$s"
          load "$N" "$round" "$name" "$port" "$ep" "$pid" "$dist"
        done
      done
    done
  done
  RSS2=$(rss_kb "$TPID")
  { printf 'after the load: '; "$HERE/page_cache.sh" report "tenantry_bench_$N"; } | tee -a "$OUT/page_cache.txt" || true
  printf '%s\t%s\t%s\t%s\t%s\n' "$N" "$RSS0" "$RSS1" "$RSS2" "$N" >> "$OUT/rss.tsv"
  cleanup; PIDS=()

  if [ "$DJANGO" = 1 ]; then
    "$HERE/django.sh" "$N" "$OUT" "$DJANGO_PORT"
  fi
done

python3 "$HERE/summarize.py" "$OUT/results.tsv" "$OUT/rss.tsv" | tee "$OUT/summary.md"
echo "results in $OUT"
