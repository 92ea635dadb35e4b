#!/usr/bin/env bash
# Installs promtool (Debian's `prometheus` package) for the alert-rule tests. Only the binary is
# used; the service is never started (policy-rc.d refuses service starts while it installs).
#
# Usage: scripts/prometheus.sh   (as root, or with the package already installed)
# Safe to run concurrently and repeatedly: a lock serialises runs, the package is kept.
set -euo pipefail

ready() { command -v promtool >/dev/null 2>&1; }

if ready; then
    exit 0
fi
exec 9>/tmp/portcullis-prometheus.lock
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
apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
install() { apt-get install "${apt_opts[@]}" prometheus >/dev/null; }
install || { apt-get update -q -o DPkg::Lock::Timeout=600 >/dev/null && install; }
ready || { echo "prometheus: promtool missing after installing" >&2; exit 1; }
echo "prometheus: promtool installed" >&2
