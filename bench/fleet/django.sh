#!/usr/bin/env bash
# django-tenants' creation and migrate_schemas timings at N tenants, for the same-run comparison
# with the fleet benchmark's one-table phase. Usage: bench/fleet/django.sh [N] (default 1000).
#
# Copies ../shared/bench/django-tenants (read-only) to a temporary folder (DJANGO_WORK, default
# /tmp/tenantry-fleet-django) and runs its own scripts there against a database of its own
# (DT_DB_NAME, default dt_fleet), created here; the shared PostgreSQL cluster's configuration is left
# alone (unlike the baseline's setup.sh: no pg_hba/max_connections edit, no restart).
#   make_tenants.sh N  -> per-tenant creation (CREATE SCHEMA + migrate, then Domain + 10 items)
#   migrate.sh         -> migrate_schemas no-op and one added column, standard and 2 processes
# Raw output lands in $DJANGO_WORK/django-tenants/results/. Drop the database afterwards with
#   dropdb -h 127.0.0.1 -U postgres dt_fleet
set -euo pipefail
N="${1:-1000}"
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="${DJANGO_BASELINE:-$HERE/../../../shared/bench/django-tenants}"
WORK="${DJANGO_WORK:-/tmp/tenantry-fleet-django}"
export DT_DB_NAME="${DT_DB_NAME:-dt_fleet}"
if [ ! -d "$WORK/django-tenants" ]; then
  mkdir -p "$WORK" && cp -r "$SRC" "$WORK/" && chmod -R u+w "$WORK"
  rm -rf "$WORK/django-tenants/results" "$WORK/django-tenants/logs"
fi
cd "$WORK/django-tenants"
source scripts/common.sh
if [ ! -x "$PY" ]; then python3 -m venv "$VENV"; "$VENV/bin/pip" install -q -r requirements.txt; fi
psql -tAc "select 1 from pg_database where datname='$DT_DB_NAME'" postgres | grep -q 1 || createdb "$DT_DB_NAME"
manage migrate_schemas --shared -v 0
manage bench_public_tenant
echo "# django-tenants in $WORK, database $DT_DB_NAME, N=$N, $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
./make_tenants.sh "$N" | grep -E '^(SUMMARY|WALL)'
# migrate.sh counts the tenants itself (every non-public schema of the database).
./migrate.sh | grep -E '^(#|MIGRATE|STARTUP)'
