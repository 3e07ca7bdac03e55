#!/usr/bin/env bash
# How many SQL statements does one request cost? Two independent views:
#  1. Django's CaptureQueriesContext around test-client requests (tenants + control);
#  2. only with PG_STATEMENT_LOG=1 (it changes the server's settings for a few seconds and reads
#     its log file, PGLOG, default Debian's): PostgreSQL itself, log_statement=all for a few real
#     requests to gunicorn (CONN_MAX_AGE=60 and 0), counted from the server log, then
#     log_statement reset.
# Output: results/query_count.txt
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
OUT="$RESULTS/query_count.txt"
PGLOG="${PGLOG:-/var/log/postgresql/postgresql-15-main.log}"
PORT="${DT_PORT:-8001}"
{
echo "## 1. Django CaptureQueriesContext (test client)"
echo "# tenants project"
manage shell -v 0 -c "exec(open('$BENCH_DIR/scripts/count_queries.py').read())"
echo "# control project"
manage_control shell -v 0 -c "exec(open('$BENCH_DIR/scripts/count_queries.py').read())"
} | tee "$OUT"
if [ "${PG_STATEMENT_LOG:-0}" != 1 ]; then
  echo "(PostgreSQL's own count skipped: PG_STATEMENT_LOG=1 to run it)" | tee -a "$OUT"
  exit 0
fi
printf '\n## 2. PostgreSQL log_statement=all, real requests through gunicorn (1 worker)\n' | tee -a "$OUT"

psql -qc "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" postgres >/dev/null
trap 'psql -qc "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()" postgres >/dev/null' EXIT
sleep 1
for proj in tenants control; do
  for cma in 60 0; do
    if [ $proj = tenants ]; then dir=$TP; app=benchproj.wsgi:application; db="$DB"
    else dir=$CP; app=controlproj.wsgi:application; db="$CONTROL_DB"; fi
    DT_CONN_MAX_AGE=$cma "$VENV/bin/gunicorn" "$app" --chdir "$dir" -w 1 -b 127.0.0.1:$PORT --log-level warning >>"$LOGS/gunicorn.log" 2>&1 &
    G=$!
    until curl -s -o /dev/null -H 'Host: t0001.bench.local' http://127.0.0.1:$PORT/ping/; do sleep 0.1; done
    # one request before measuring so a persistent connection already exists
    curl -s -o /dev/null -H 'Host: t0001.bench.local' http://127.0.0.1:$PORT/items/
    for ep in items ping; do
      sleep 0.5
      start=$(stat -c %s $PGLOG)
      for h in t0001 t0002 t0003; do curl -s -o /dev/null -H "Host: $h.bench.local" http://127.0.0.1:$PORT/$ep/; done
      sleep 0.5
      stmts=$(tail -c +$((start + 1)) $PGLOG | grep "@$db " | grep -E 'LOG:  statement:' || true)
      n=$(printf '%s' "$stmts" | grep -c 'statement:' || true)
      echo "PG project=$proj conn_max_age=$cma /$ep/: $n statements for 3 requests => $(echo "scale=2; $n/3" | bc) per request" | tee -a "$OUT"
      printf '%s\n' "$stmts" | sed -E 's/^.*statement: /      /' | head -12 | tee -a "$OUT"
    done
    kill $G; wait $G 2>/dev/null || true
  done
done
