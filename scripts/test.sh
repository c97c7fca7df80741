#!/usr/bin/env bash
# The whole test suite: unit tests, libuv tests on real loops, and end-to-end tests that run
# real scheduler/worker/client processes on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
swift build --build-tests
swift test --skip-build "$@"
