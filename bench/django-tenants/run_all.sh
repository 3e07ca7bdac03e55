#!/usr/bin/env bash
# Usage: ./run_all.sh [N ...]   (default: 100 1000)
# Fresh databases (reset.sh drops the baseline's own two), then for each N (ascending): make_tenants, load, migrate.
# Query count per request is measured once at the end.
set -euo pipefail
cd "$(dirname "$0")"
./reset.sh
NS=("$@"); [ ${#NS[@]} -gt 0 ] || NS=(100 1000)
for N in "${NS[@]}"; do
  ./make_tenants.sh "$N" "${MAKE_MAX_SECONDS:-900}"
  ./load.sh "$N" "${DURATION:-20}"
  ./migrate.sh
done
./count_queries.sh
