#!/usr/bin/env bash
# The write stall of an online move: a tenant holding ROWS notes (default 100,000) is moved to
# the other worker (`tenantry-demo tenant move`, i.e. Placement::move_tenant, which holds the
# tenant's lock for the whole move) while one client POSTs a note to it through the demo every
# INTERVAL_MS (default 10 ms). Prints the move's total time, the longest write stall (the longest
# time one write took from its first send to its 201, a 503 being retried as documented), the
# longest gap between two answered writes, the writes made, and checks that none was lost
# (rows counted after the move). One run. Target (issue 13): stall <= 1 s.
#
#   scripts/citus.sh start                         # the local cluster (coordinator :9700)
#   cargo build --release -p tenantry-demo         # or DEMO_BIN=target/debug/tenantry-demo
#   bench/citus/move_stall.sh
#
# Environment: CITUS (coordinator database URL, default postgres://postgres@127.0.0.1:9700/tenantry),
# ROWS (100000), INTERVAL_MS (10), PORT (demo port, 8141), DEMO_BIN, PG_BIN. The tenant
# (stall<time>) is deleted at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CITUS="${CITUS:-postgres://postgres@127.0.0.1:9700/tenantry}"
ROWS="${ROWS:-100000}"
INTERVAL_MS="${INTERVAL_MS:-10}"
PORT="${PORT:-8141}"
DEMO_BIN="${DEMO_BIN:-$ROOT/target/release/tenantry-demo}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
[ -x "$DEMO_BIN" ] || { echo "build first: cargo build --release -p tenantry-demo (or set DEMO_BIN)" >&2; exit 1; }
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$CITUS" "$@"; }

NAME="stall$(date +%s)"
OUT="$(mktemp -d /tmp/move_stall.XXXXXX)"
demo_pid=""
cleanup() {
  [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
  DATABASE_URL="$CITUS" "$DEMO_BIN" tenant delete "$NAME" --yes >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT

# The demo on the coordinator, without per-plan rate limits (one write every 10 ms is above them).
DATABASE_URL="$CITUS" TENANTRY_DEMO_ADDR="127.0.0.1:$PORT" TENANTRY_DEMO_RATE_LIMITS=0 RUST_LOG=warn \
  "$DEMO_BIN" >"$OUT/demo.log" 2>&1 &
demo_pid=$!
for _ in $(seq 300); do
  curl -s -o /dev/null -H 'host: localhost' "http://127.0.0.1:$PORT/api/tenants" && break
  sleep 0.2
done
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'host: localhost' \
  -d "name=$NAME&subdomain=$NAME" "http://127.0.0.1:$PORT/signup")
[ "$code" = 303 ] || { echo "signup answered $code" >&2; cat "$OUT/demo.log" >&2; exit 1; }

# The tenant's rows, in bulk on the coordinator (the schema name is ours, [a-z0-9]).
psql -c "INSERT INTO \"$NAME\".notes (title, body) SELECT 'bulk ' || i, repeat('x', 100) FROM generate_series(1, $ROWS) i"
before=$(psql -tAc "SELECT count(*) FROM \"$NAME\".notes")
size=$(psql -tAc "SELECT pg_size_pretty(sum(shard_size)) FROM citus_shards WHERE citus_table_type = 'schema' AND table_name::text LIKE '$NAME.%'")
from=$(psql -tAc "SELECT nodename || ':' || nodeport FROM citus_shards WHERE table_name = '\"$NAME\".notes'::regclass")
to=$(psql -tAc "SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0 \
  AND nodename || ':' || nodeport <> '$from' ORDER BY nodeid LIMIT 1")
echo "tenant $NAME: $before notes ($size) on $from, moving to $to"

# The writer: a POST every INTERVAL_MS (sequential; a late one is sent at once), 503 retried.
cat > "$OUT/writer.py" <<'PY'
import http.client, json, os, sys, time
port, name, interval, stop = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) / 1000, sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
host = f"{name}.localhost"
acked, retried, worst, worst_gap, other = 0, 0, 0.0, 0.0, {}
last_ack = time.monotonic()
lat = []
nxt = time.monotonic()
while not os.path.exists(stop):
    nxt += interval
    first = time.monotonic()
    while True:
        try:
            conn.request("POST", "/api/notes", body=json.dumps({"title": f"w{acked}", "body": "b"}),
                         headers={"Host": host, "Content-Type": "application/json"})
            r = conn.getresponse(); r.read(); status = r.status
        except (ConnectionError, http.client.HTTPException):
            conn.close(); status = 0
        if status == 503 or status == 0:
            retried += 1; time.sleep(0.01); continue
        break
    done = time.monotonic()
    if status == 201:
        acked += 1
        worst = max(worst, done - first); worst_gap = max(worst_gap, done - last_ack); last_ack = done
        lat.append(done - first)
    else:
        other[status] = other.get(status, 0) + 1
    time.sleep(max(0.0, nxt - time.monotonic()))
lat.sort()
p99 = lat[int(len(lat) * 0.99)] if lat else 0
print(json.dumps({"acked": acked, "retried_503": retried, "other": other, "worst_s": round(worst, 3),
                  "worst_gap_s": round(worst_gap, 3), "p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else 0,
                  "p99_ms": round(p99 * 1000, 1)}))
PY
python3 "$OUT/writer.py" "$PORT" "$NAME" "$INTERVAL_MS" "$OUT/stop" > "$OUT/writer.json" &
writer=$!
sleep 2 # writes before the move
t0=$(date +%s.%N)
DATABASE_URL="$CITUS" "$DEMO_BIN" tenant move "$NAME" --to "$to" >"$OUT/move.log" 2>&1 \
  || { echo "move failed:" >&2; cat "$OUT/move.log" >&2; exit 1; }
t1=$(date +%s.%N)
sleep 2 # writes after the move
touch "$OUT/stop"; wait "$writer"
echo "the CLI: $(grep -a 'moved' "$OUT/move.log" | tail -1)"
now=$(psql -tAc "SELECT nodename || ':' || nodeport FROM citus_shards WHERE table_name = '\"$NAME\".notes'::regclass")
after=$(psql -tAc "SELECT count(*) FROM \"$NAME\".notes")
python3 - "$t0" "$t1" "$before" "$after" "$now" "$to" "$OUT/writer.json" <<'PY'
import json, sys
t0, t1, before, after, now, to, path = sys.argv[1:]
w = json.load(open(path))
lost = int(before) + w["acked"] - int(after)
print(f"move: {float(t1) - float(t0):.2f} s total (the CLI, lock to commit); tenant now on {now} (asked {to})")
print(f"writes: {w['acked']} answered 201, {w['retried_503']} retried after 503/connection errors, other statuses {w['other']}")
print(f"latency: p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms; longest write stall {w['worst_s']} s, "
      f"longest gap between answered writes {w['worst_gap_s']} s (target stall <= 1 s)")
print(f"rows: {before} before + {w['acked']} written = {int(before) + w['acked']}, counted {after}: {lost} lost")
PY
