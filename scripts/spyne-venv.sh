#!/usr/bin/env bash
# Creates the Python virtual environment that portcullis-soap's spyne integration test runs
# its SOAP server in: spyne (a SOAP server this project did not write) and lxml, from PyPI.
#
# Usage: scripts/spyne-venv.sh [VENV_DIR]
#   default VENV_DIR: $CARGO_TARGET_DIR/spyne-venv, else target/spyne-venv in the repository.
# Needs python3 (3.8-3.11: spyne 2.14 predates 3.12) with the venv module, and PyPI access.
# Safe to run concurrently and repeatedly: a lock serialises runs, a ready venv is kept.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${CARGO_TARGET_DIR:-$repo/target}/spyne-venv}"
python="${PYTHON:-python3}"

# Versions checked together on Python 3.11.
requirements=(spyne==2.14.0 lxml==6.1.3 pytz==2026.6)

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

ready() {
    [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import spyne, lxml, spyne.server.wsgi' 2>/dev/null
}

if ready; then
    exit 0
fi
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${requirements[@]}"
ready || { echo "spyne-venv: spyne did not import after installing" >&2; exit 1; }
echo "spyne-venv: ready at $venv" >&2
