#!/usr/bin/env bash
# Installs headless Chromium (Debian's `chromium` package) for the browser tests. The CORS test
# serves a page from one origin and lets Chromium `fetch()` the gateway on another, so the
# verdict asserted is the browser's own; the dashboard test loads the admin dashboard with and
# without the token.
#
# Usage: scripts/chromium.sh   (as root, or with /usr/bin/chromium already installed)
# Safe to run concurrently and repeatedly: a lock serialises runs, an installed package is kept.
set -euo pipefail

ready() { [ -x /usr/bin/chromium ]; }

if ready; then
    exit 0
fi
exec 9>/tmp/portcullis-chromium.lock
flock 9
if ready; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Other set-up scripts may hold the dpkg lock: wait for it rather than fail.
install() { apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium >/dev/null; }
install || { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && install; }
ready || { echo "chromium.sh: /usr/bin/chromium missing after installing" >&2; exit 1; }
echo "chromium.sh: chromium installed" >&2
