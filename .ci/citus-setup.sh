#!/usr/bin/env bash
# Installs the Citus extension (13.2.2, built from source) when citus.so is missing, so the
# Citus tests (tenantry-testing feature `citus`) run for real: each test starts its own
# coordinator + workers as private clusters; nothing is started here. Called by .ci/run.
# The source tarball comes from ../shared/citus beside the repository (CITUS_SRC overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/citus.sh install "${CITUS_SRC:-$(pwd)/../shared/citus}"
