#!/usr/bin/env bash
# The django-tenants baseline on the same workload, called by run.sh when DJANGO=1.
# Usage: bench/http/django.sh N OUT_DIR PORT
#
# Uses the baseline in bench/django-tenants: its virtualenv with the pinned requirements
# (created on first use), databases dt_bench/dt_control, `make_tenants.sh N`
# (t0001..tN.bench.local, 10 items each). Then gunicorn (2 sync workers, persistent connections: the baseline's best configuration)
# serves /items/ (one query, the analogue of /api/notes) and /ping/ (no query, /api/whoami), loaded
# with the same wrk settings and hosts.lua as the Rust servers.
set -euo pipefail
N="$1"; OUT="$2"; PORT="$3"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ "$N" -le 9999 ] || { echo "django-tenants baseline: N <= 9999 only (its host names are t%04d)"; exit 0; }
cd "$HERE/../django-tenants"
source scripts/common.sh
ensure_venv
ensure_databases
./make_tenants.sh "$N" > "$OUT/django_make_tenants_N$N.txt" 2>&1
vacuumdb -q --analyze -d "$DB"

DT_CONN_MAX_AGE=60 "$VENV/bin/gunicorn" benchproj.wsgi:application --chdir "$TP" -w 2 -k sync \
  -b "127.0.0.1:$PORT" --log-level warning > "$OUT/django_gunicorn.log" 2>&1 &
GPID=$!
trap 'kill $GPID 2>/dev/null || true; wait $GPID 2>/dev/null || true' EXIT
LAST=$(printf 't%04d' "$N")
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $LAST.bench.local" "http://127.0.0.1:$PORT/ping/" || true)" = 200 ] && break
  sleep 0.2
done
export BENCH_TENANTS="$N" BENCH_HOST_FMT="t%04d.bench.local"
wrk -t"${WRK_THREADS:-1}" -c"${WRK_CONNS:-16}" -d2s -s "$HERE/hosts.lua" "http://127.0.0.1:$PORT/items/" > /dev/null
for round in $(seq 1 "${ROUNDS:-3}"); do
  for pair in "/items/:/api/notes" "/ping/:/api/whoami"; do
    path="${pair%%:*}"; ep="${pair#*:}"
    raw="$OUT/wrk_N${N}_r${round}_django-tenants_${ep//\//_}.txt"
    workers=$(pgrep -P "$GPID" | tr '\n' ' ')
    t0=0; for p in $GPID $workers; do t0=$((t0 + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    wrk -t"${WRK_THREADS:-1}" -c"${WRK_CONNS:-16}" -d"${DURATION:-10}s" --latency -s "$HERE/hosts.lua" \
      "http://127.0.0.1:$PORT$path" > "$raw"
    t1=0; for p in $GPID $workers; do t1=$((t1 + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    line=$(grep '^RESULT' "$raw")
    get() { echo "$line" | tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }
    # CPU of gunicorn's master and workers (PostgreSQL's share is not counted, as for the others).
    cpu=$(python3 -c "print(f'{($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / $(get requests):.1f}')")
    echo "  N=$N round=$round django-tenants $path: $line cpu_us_per_req=$cpu"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$N" "$round" django-tenants "$ep" "$(get rps)" \
      "$(get p50_ms)" "$(get p99_ms)" "$(get requests)" "$(get non2xx)" "$(get errors)" "$cpu" >> "$OUT/results.tsv"
  done
done
