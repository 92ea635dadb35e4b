#!/usr/bin/env bash
# Installs the reverse proxies the differential test compares the gateway with: nginx and
# HAProxy, from Debian's packages. The test starts them itself, on loopback ports with its own
# config files; they are never started as services (policy-rc.d refuses service starts while
# the packages install).
#
# Usage: scripts/http-peers.sh   (as root, or with the packages already installed)
# Safe to run concurrently and repeatedly: a lock serialises runs, installed packages are kept.
set -euo pipefail

ready() {
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || return 1
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || return 1
}

if ready; then
    exit 0
fi
exec 9>/tmp/portcullis-http-peers.lock
flock 9
if ready; then
    exit 0
fi

policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 nginx haproxy >/dev/null; }
install || { apt-get update -q -o DPkg::Lock::Timeout=600 >/dev/null && install; }
ready || { echo "http-peers: nginx or haproxy missing after installing" >&2; exit 1; }
echo "http-peers: nginx and haproxy installed" >&2
