#!/usr/bin/env bash
# Runs the fleet benchmark in release mode. Arguments go to the binary, e.g.
#   bench/fleet/run.sh                 # 1,000 tenants (a few minutes on 2 cores)
#   bench/fleet/run.sh --n 10000       # the 10,000-tenant run
set -euo pipefail
cd "$(dirname "$0")/../.."
exec cargo run --release -p tenantry-bench-fleet -- "$@"
