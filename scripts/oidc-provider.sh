#!/usr/bin/env bash
# Installs the OpenID provider that the end-to-end JWT tests run: oidc-provider (an
# authorization server this project did not write) from the npm registry, at the versions
# pinned by scripts/oidc-provider/package-lock.json, beside a copy of server.mjs.
#
# Usage: scripts/oidc-provider.sh [DIR]
#   default DIR: $CARGO_TARGET_DIR/oidc-provider, else target/oidc-provider in the repository.
#   Then: node DIR/server.mjs 0   (see server.mjs for what it serves and prints).
# Needs node (18 or later; oidc-provider 9 wants 22, hence 8.x) and npm with registry access.
# Safe to run concurrently and repeatedly: a lock serialises runs, a ready install is kept
# and is redone only when package.json, the lock file or server.mjs changed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo/scripts/oidc-provider"
dir="${1:-${CARGO_TARGET_DIR:-$repo/target}/oidc-provider}"
files=(package.json package-lock.json server.mjs)

mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9

ready() {
    [ -f "$dir/node_modules/oidc-provider/package.json" ] || return 1
    for f in "${files[@]}"; do
        cmp -s "$src/$f" "$dir/$f" || return 1
    done
}

if ready; then
    exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
for f in "${files[@]}"; do
    cp "$src/$f" "$dir/$f"
done
(cd "$dir" && npm ci --silent --no-audit --no-fund --omit=dev >/dev/null)
ready || { echo "oidc-provider: not installed after npm ci" >&2; exit 1; }
echo "oidc-provider: ready at $dir" >&2
