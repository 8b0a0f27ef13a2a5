#!/usr/bin/env bash
# What the browser tests (tests/e2e) need: Debian's Chromium at /usr/bin/chromium.
# Playwright itself comes from pyproject's test extra; its bundled browsers are not used.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "browser.sh: /usr/bin/chromium is missing; install it as root: apt-get install -y chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
