#!/usr/bin/env bash
# Idempotent set-up of the django-tenants baseline, on the PostgreSQL at PGHOST (default
# 127.0.0.1, user postgres, trust or ~/.pgpass):
#  - .venv with the pinned requirements.txt
#  - databases $DT_DB_NAME (django-tenants, default dt_bench) and $DT_CONTROL_DB_NAME (plain
#    Django, default dt_control); migrate_schemas --shared, the public tenant; the control
#    migrated and seeded with 10 items
#  - results/versions.txt: what ran
# The cluster's configuration is left alone: load.sh runs at most 4 gunicorn workers with one
# connection each, far below PostgreSQL's default max_connections.
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
pg_isready -h "$PGHOST" -q || { echo "PostgreSQL not reachable at $PGHOST:5432"; exit 1; }
command -v wrk >/dev/null || echo "note: load.sh needs wrk (apt-get install wrk)"
ensure_venv
ensure_databases
"$VENV/bin/pip" freeze | tee "$RESULTS/versions.txt"
{ python3 --version; psql -tAc 'select version()' postgres; (wrk --version 2>&1 || true) | head -1; echo "cores: $(nproc)"; } | tee -a "$RESULTS/versions.txt"
echo "setup done"
