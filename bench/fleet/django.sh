#!/usr/bin/env bash
# django-tenants' creation and migrate_schemas timings at N tenants, for the same-run comparison
# with the fleet benchmark's one-table phase. Usage: bench/fleet/django.sh [N] (default 1000).
#
# Runs the baseline in bench/django-tenants (its virtualenv with the pinned requirements is
# created on first use) against a database of its own (DT_DB_NAME, default dt_fleet):
#   make_tenants.sh N  -> per-tenant creation (CREATE SCHEMA + migrate, then Domain + 10 items)
#   migrate.sh         -> migrate_schemas no-op and one added column, standard and 2 processes
# Raw output lands in bench/django-tenants/results/. Drop the databases afterwards with
#   dropdb -h 127.0.0.1 -U postgres dt_fleet; dropdb -h 127.0.0.1 -U postgres dt_control
set -euo pipefail
N="${1:-1000}"
HERE="$(cd "$(dirname "$0")" && pwd)"
export DT_DB_NAME="${DT_DB_NAME:-dt_fleet}"
cd "$HERE/../django-tenants"
source scripts/common.sh
ensure_venv
ensure_databases
echo "# django-tenants (bench/django-tenants), database $DT_DB_NAME, N=$N, $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
./make_tenants.sh "$N" | grep -E '^(SUMMARY|WALL)'
# migrate.sh counts the tenants itself (every non-public schema of the database).
./migrate.sh | grep -E '^(#|MIGRATE|STARTUP)'
