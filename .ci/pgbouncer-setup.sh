#!/usr/bin/env bash
# Installs PgBouncer from Debian if missing (the isolation tests start their own instance on a
# free port; nothing is configured or started here). Called by .ci/run.
set -euo pipefail
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  echo "pgbouncer present: $(/usr/sbin/pgbouncer --version 2>/dev/null | head -n1 || pgbouncer --version | head -n1)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends pgbouncer
# The Debian package enables a system service; the tests don't use it.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now pgbouncer >/dev/null 2>&1 || true; fi
/usr/sbin/pgbouncer --version | head -n1
