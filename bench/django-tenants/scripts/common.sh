# Sourced by the scripts of this folder.
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The wrk script shared with the Tenantry HTTP benchmark (Host uniform over N tenants).
HOSTS_LUA="$BENCH_DIR/../http/hosts.lua"
export BENCH_HOST_FMT="t%04d.bench.local"
VENV="${DT_VENV:-$BENCH_DIR/.venv}"
PY="$VENV/bin/python"
TP="$BENCH_DIR/tenants_proj"
CP="$BENCH_DIR/control_proj"
# Generated output (git-ignored).
RESULTS="$BENCH_DIR/results"
LOGS="$BENCH_DIR/logs"
# Databases: django-tenants' (DT_DB_NAME) and the plain-Django control's (DT_CONTROL_DB_NAME);
# the Django settings read the same variables.
export DT_DB_NAME="${DT_DB_NAME:-dt_bench}" DT_CONTROL_DB_NAME="${DT_CONTROL_DB_NAME:-dt_control}"
DB="$DT_DB_NAME"
CONTROL_DB="$DT_CONTROL_DB_NAME"
export PGUSER="${PGUSER:-postgres}" PGHOST="${PGHOST:-127.0.0.1}"
mkdir -p "$RESULTS" "$LOGS"
now() { date +%s.%N; }
manage() { (cd "$TP" && "$PY" manage.py "$@"); }
manage_control() { (cd "$CP" && "$PY" manage.py "$@"); }
# The virtualenv with the pinned requirements (created or brought in line with
# requirements.txt when it differs).
ensure_venv() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
  fi
  if ! cmp -s <("$VENV/bin/pip" freeze 2>/dev/null | sort -f) \
              <(grep -vE '^\s*(#|$)' "$BENCH_DIR/requirements.txt" | sed 's/\[binary\]//' | sort -f); then
    "$VENV/bin/pip" install -q -r "$BENCH_DIR/requirements.txt"
  fi
}
# Databases, shared schema, public tenant, control seeded with 10 items (idempotent).
ensure_databases() {
  local db
  for db in "$DB" "$CONTROL_DB"; do
    psql -tAc "select 1 from pg_database where datname='$db'" postgres | grep -q 1 || createdb "$db"
  done
  manage migrate_schemas --shared -v 0
  manage bench_public_tenant
  manage_control migrate -v 0
  manage_control shell -c "
from items.models import Item
if not Item.objects.exists():
    Item.objects.bulk_create([Item(name='item %d of control' % j) for j in range(10)])"
}
