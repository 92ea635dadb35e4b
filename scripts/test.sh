#!/usr/bin/env bash
# The whole test suite: unit tests beside the code and end-to-end tests over real sockets.
# All test traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
cargo test --workspace --locked "$@"
