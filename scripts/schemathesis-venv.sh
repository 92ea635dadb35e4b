#!/usr/bin/env bash
# Creates the Python virtual environment that the e2e test `validation::schemathesis_*` runs
# schemathesis in: a property-based API tester this project did not write, from PyPI. It
# generates requests (valid and invalid) from an OpenAPI document; the test sends them through
# the gateway to a recording backend.
#
# Usage: scripts/schemathesis-venv.sh [VENV_DIR]
#   default VENV_DIR: $CARGO_TARGET_DIR/schemathesis-venv, else target/schemathesis-venv.
# Needs python3 (>= 3.9) with the venv module, and PyPI access.
# Safe to run concurrently and repeatedly: a lock serialises runs, a ready venv is kept.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-${CARGO_TARGET_DIR:-$repo/target}/schemathesis-venv}"
python="${PYTHON:-python3}"

requirements=(schemathesis==4.32.5)

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

ready() {
    [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import schemathesis, hypothesis, requests' 2>/dev/null
}

if ready; then
    exit 0
fi
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${requirements[@]}"
ready || { echo "schemathesis-venv: schemathesis did not import after installing" >&2; exit 1; }
echo "schemathesis-venv: ready at $venv" >&2
