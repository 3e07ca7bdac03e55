#!/usr/bin/env bash
# Usage: ./migrate.sh
# Times `migrate_schemas` (public + every tenant schema) for
#   a) a no-op run (nothing to apply), and
#   b) one new migration, items.0002 = AddField Item.note (nullable varchar),
# with the standard executor and with the multiprocessing executor
# (TENANT_MULTIPROCESSING_MAX_PROCESSES=2, set in settings; chunks=2 default).
# Each forward run is followed by a timed rollback to items.0001 with the same executor,
# so both executors start from the same state; the 0002 file is removed at the end.
# Raw output: results/migrate_N<N>.txt; per-schema migrate logs in logs/.
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
MIG="$TP/items/migrations/0002_item_note.py"
N=$(psql -tAc "select count(*) from customers_client where schema_name <> 'public'" "$DB")
OUT="$RESULTS/migrate_N$N.txt"
cols() { psql -tAc "select count(*) from information_schema.columns where table_name='items_item' and column_name='note'" "$DB"; }

cleanup() { rm -f "$MIG"; }
# normalise state if a previous run was interrupted
if [ -f "$MIG" ] || [ "$(cols)" != 0 ]; then
  cp "$BENCH_DIR/scripts/0002_item_note.py.txt" "$MIG"
  manage migrate_schemas items 0001 -v 0 >/dev/null
fi
rm -f "$MIG"
trap cleanup EXIT

echo "# migrate.sh tenants=$N (+ public schema)  $(date -u +%FT%TZ)  $(nproc) cores" | tee "$OUT"
run() {  # label executor args...
  local label=$1 ex=$2; shift 2
  local log="$LOGS/migrate_N${N}_${label}_${ex}.log"
  local t0 t1
  t0=$(now)
  manage migrate_schemas --executor="$ex" "$@" >"$log" 2>&1
  t1=$(now)
  printf 'MIGRATE N=%s %-10s executor=%-15s seconds=%7.2f  per_schema_ms=%6.1f  note_columns_after=%s  log_lines=%s\n' \
    "$N" "$label" "$ex" "$(echo "$t1 - $t0" | bc)" "$(echo "($t1 - $t0) * 1000 / ($N + 1)" | bc -l)" "$(cols)" "$(wc -l <"$log")" | tee -a "$OUT"
}

# fixed cost of any manage.py invocation (interpreter + django.setup()), for reference
t0=$(now); manage check >/dev/null 2>&1; t1=$(now)
echo "STARTUP manage.py check seconds=$(echo "$t1 - $t0" | bc)" | tee -a "$OUT"
for ex in standard multiprocessing; do
  run noop "$ex"
done
cp "$BENCH_DIR/scripts/0002_item_note.py.txt" "$MIG"
for ex in standard multiprocessing; do
  run add_column "$ex"
  run rollback "$ex" items 0001
done
