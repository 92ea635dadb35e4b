#!/usr/bin/env bash
# Installs Debian's OWASP Core Rule Set package (modsecurity-crs, CRS 3.3.x) that
# portcullis-crs's tests load: rules under /usr/share/modsecurity-crs/rules, the setup file
# under /etc/modsecurity/crs. Needs root and access to Debian's package archive.
# Safe to run concurrently and repeatedly: a lock serialises runs, an installed package is kept.
set -euo pipefail

root=/usr/share/modsecurity-crs
ready() {
    [ -f "$root/owasp-crs.load" ] && [ -d "$root/rules" ] && [ -f /etc/modsecurity/crs/crs-setup.conf ]
}

if ready; then
    exit 0
fi
exec 9>/tmp/portcullis-modsecurity-crs.lock
flock 9
if ready; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "modsecurity-crs: $root is missing and installing it needs root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq -o DPkg::Lock::Timeout=600
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 modsecurity-crs >/dev/null
ready || { echo "modsecurity-crs: installed, but $root is incomplete" >&2; exit 1; }
echo "modsecurity-crs: ready at $root" >&2
