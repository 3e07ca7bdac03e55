#!/usr/bin/env bash
# Usage: ./load.sh N [DURATION_SECONDS]
# For each CONN_MAX_AGE mode (60 = persistent connections, 0 = Django default: one new
# PostgreSQL connection per request), each gunicorn sync worker count (2, 4) and each
# project (tenants = django-tenants, control = plain Django, same items app in public
# schema), start gunicorn on 127.0.0.1:8001, warm up 2 s, then run wrk for DURATION s
# (default 20) on /ping/ and /items/ with a Lua script that picks the Host header
# uniformly at random from t0001..tN.bench.local (../http/hosts.lua, shared with the Tenantry
# benchmark).
# The whole matrix is repeated REPS times (default 3, interleaved, so slow drifts of the
# shared VM hit every configuration alike); the summary reports the median over reps.
# Raw output: results/load_N<N>.txt; table: results/load_N<N>_summary.tsv (one row per run)
# Knobs: REPS=3 WORKERS="2 4" CONN_MODES="60 0" PROJECTS="tenants control" WRK_THREADS=1 WRK_CONNS=8
#        DT_PORT=8001
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
N="${1:?usage: load.sh N [DURATION]}"
DUR="${2:-20}"
REPS="${REPS:-3}"
WORKERS="${WORKERS:-2 4}"
CONN_MODES="${CONN_MODES:-60 0}"
PROJECTS="${PROJECTS:-tenants control}"
WRK_THREADS="${WRK_THREADS:-1}"
WRK_CONNS="${WRK_CONNS:-8}"
PORT="${DT_PORT:-8001}"
RAW="$RESULTS/load_N$N.txt"
TSV="$RESULTS/load_N$N""_summary.tsv"
export BENCH_TENANTS="$N"
LUA="$HOSTS_LUA"
GPID=""

stop_server() {
  if [ -n "$GPID" ] && kill -0 "$GPID" 2>/dev/null; then
    kill -TERM "$GPID"; wait "$GPID" 2>/dev/null || true
  fi
  GPID=""
}
trap stop_server EXIT

start_server() {  # project workers cma
  local proj=$1 w=$2 cma=$3 dir app
  if [ "$proj" = tenants ]; then dir="$TP"; app=benchproj.wsgi:application
  else dir="$CP"; app=controlproj.wsgi:application; fi
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
    echo "port $PORT already in use" >&2; exit 1
  fi
  DT_CONN_MAX_AGE=$cma "$VENV/bin/gunicorn" "$app" --chdir "$dir" -w "$w" -k sync \
      -b "127.0.0.1:$PORT" --log-level warning >>"$LOGS/gunicorn.log" 2>&1 &
  GPID=$!
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: t0001.bench.local" "http://127.0.0.1:$PORT/ping/" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  echo "server did not come up" >&2; exit 1
}

# settle the database first: autovacuum of freshly created catalogs/tables would otherwise
# land inside the measurement windows
vacuumdb -q --analyze -d "$DB"; vacuumdb -q --analyze -d "$CONTROL_DB"; psql -qc CHECKPOINT postgres

# sanity: the last tenant answers with its own schema and 10 items
LAST=$(printf 't%04d' "$N")
start_server tenants 2 0
body=$(curl -s -H "Host: $LAST.bench.local" "http://127.0.0.1:$PORT/items/")
echo "$body" | "$PY" -c "import json,sys; d=json.load(sys.stdin); assert d['schema']=='$LAST' and len(d['items'])==10, d; print('sanity ok: $LAST has', len(d['items']), 'items')"
stop_server

echo "# load.sh N=$N duration=${DUR}s reps=$REPS wrk -t$WRK_THREADS -c$WRK_CONNS  $(date -u +%FT%TZ)  $(nproc) cores" | tee "$RAW"
printf 'rep\tproject\tconn_max_age\tworkers\tendpoint\trps\tp50_ms\tp99_ms\tnon2xx\trequests\n' > "$TSV"

for rep in $(seq 1 "$REPS"); do
  for cma in $CONN_MODES; do
    for w in $WORKERS; do
      for proj in $PROJECTS; do
        start_server "$proj" "$w" "$cma"
        wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d2s -s "$LUA" "http://127.0.0.1:$PORT/items/" >/dev/null  # warm-up
        for ep in ping items; do
          echo "=== rep=$rep project=$proj conn_max_age=$cma workers=$w endpoint=/$ep/ tenants=$N" | tee -a "$RAW"
          out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${DUR}s" --latency -s "$LUA" "http://127.0.0.1:$PORT/$ep/")
          echo "$out" >> "$RAW"
          line=$(echo "$out" | grep '^RESULT')
          echo "$line"
          get() { echo "$line" | tr ' ' '\n' | grep "^$1=" | cut -d= -f2; }
          printf '%s\t%s\t%s\t%s\t/%s/\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$proj" "$cma" "$w" "$ep" \
            "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" "$(get non2xx)" "$(get requests)" >> "$TSV"
        done
        stop_server
      done
    done
  done
done

"$PY" "$BENCH_DIR/scripts/summarize_load.py" "$TSV" | tee -a "$RAW"
