#!/usr/bin/env bash
# CPU time per request of a running server and of its PostgreSQL backends: less sensitive to other
# load on the machine than req/s (both are sums of utime + stime from /proc, over one wrk run).
#
# Usage: bench/http/cpu.sh PID PORT PATH N DATABASE [SECONDS]
#   PID       the server process            PORT, PATH  what wrk loads (Host spread over N tenants)
#   DATABASE  the server's database: its client backends' CPU is counted as "pg"
# Prints: rps, server us/request, PostgreSQL us/request.
set -euo pipefail
pid=$1 port=$2 path=$3 n=$4 db=$5 secs=${6:-5}
HERE="$(cd "$(dirname "$0")" && pwd)"
PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
ticks() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
# Warm-up (the pool opens its connections), then the backends are those of the database.
BENCH_TENANTS="$n" wrk -t1 -c16 -d1s -s "$HERE/hosts.lua" "http://127.0.0.1:$port$path" > /dev/null
backends=$(psql "$PG/postgres" -tAc "select pid from pg_stat_activity where datname = '$db' and backend_type = 'client backend' and pid <> pg_backend_pid()" | tr '\n' ' ')
s0=$(ticks "$pid"); b0=$(ticks $backends)
out=$(BENCH_TENANTS="$n" wrk -t1 -c16 -d"${secs}s" -s "$HERE/hosts.lua" "http://127.0.0.1:$port$path")
s1=$(ticks "$pid"); b1=$(ticks $backends)
reqs=$(echo "$out" | awk '/requests in/ {print $1}')
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
python3 -c "
hz = $(getconf CLK_TCK)
print(f'port $port $path N=$n: rps=$rps server_us_per_req={($s1 - $s0) * 1e6 / hz / $reqs:.1f} pg_us_per_req={($b1 - $b0) * 1e6 / hz / $reqs:.1f}')"
