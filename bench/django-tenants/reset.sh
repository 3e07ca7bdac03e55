#!/usr/bin/env bash
# Drops the baseline's databases (all its tenants), then runs setup.sh.
set -euo pipefail
source "$(dirname "$0")/scripts/common.sh"
rm -f "$TP/items/migrations/0002_item_note.py"
dropdb --if-exists "$DB"
dropdb --if-exists "$CONTROL_DB"
"$BENCH_DIR/setup.sh"
