#!/usr/bin/env bash
# How much of a bench database the OS page cache holds, and a way to fill it.
#
#   bench/http/page_cache.sh report DB     prints "cached X GB of Y GB (Z%) in F files"
#   bench/http/page_cache.sh warm DB       reads every file of DB once (then reports)
#
# Why: at 100,000 tenants a request touches a table, two indexes and catalog rows no other
# request shares, so PostgreSQL's own buffers (128 MB by default) miss and read from the OS.
# When the database (11.7 GB for the 100,000-tenant bench) is not in the page cache, those reads
# go to disk and throughput drops by an order of magnitude: the figure then measures the disk,
# not the code. run.sh prints this report before and after the load of each N.
#
# Needs the server on this machine (its data directory readable: run as root or postgres) and
# util-linux's fincore. BENCH_PG as in run.sh.
set -euo pipefail
BENCH_PG="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
cmd="${1:?usage: page_cache.sh report|warm DB}"
db="${2:?usage: page_cache.sh report|warm DB}"

dir=$(psql "$BENCH_PG/postgres" -XAtc "SELECT current_setting('data_directory') || '/base/' || oid FROM pg_database WHERE datname = '$db'")
[ -n "$dir" ] || { echo "page_cache.sh: no database $db" >&2; exit 1; }
[ -r "$dir" ] || { echo "page_cache.sh: $dir is not readable here (remote server, or not root/postgres)" >&2; exit 1; }
command -v fincore >/dev/null || { echo "page_cache.sh: fincore (util-linux) is needed" >&2; exit 1; }

report() {
  # fincore -b -n: bytes resident, pages, size, file. Many small files: batches of 2,000.
  (cd "$dir" && find . -type f -print0 | xargs -0 -n 2000 fincore -b -n 2>/dev/null) |
    awk -v db="$db" '{res += $1; size += $3; files++}
      END {printf "%s: cached %.2f GB of %.2f GB (%.0f%%) in %d files\n", db, res / 1e9, size / 1e9,
        size ? 100 * res / size : 0, files}'
}

case "$cmd" in
  report) report ;;
  warm)
    (cd "$dir" && find . -type f -print0 | xargs -0 -P 4 -n 2000 cat > /dev/null)
    report
    ;;
  *) echo "usage: page_cache.sh report|warm DB" >&2; exit 2 ;;
esac
