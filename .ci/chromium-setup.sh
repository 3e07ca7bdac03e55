#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium and its WebDriver (chromedriver) if missing: the
# operator console's browser tests (crates/tenantry-console/tests/browser.rs) start their own
# chromedriver on a free port. Nothing is configured or started here. Called by .ci/run.
set -euo pipefail
if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; }; then
  echo "chromium present: $(chromium --version 2>/dev/null | head -n1)"
  echo "chromedriver present: $(chromedriver --version | head -n1)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=900 update -qq
apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core
chromium --version | head -n1
chromedriver --version | head -n1
