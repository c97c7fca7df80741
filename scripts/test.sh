#!/usr/bin/env bash
# The whole test suite: unit tests, libuv tests on real loops, and end-to-end tests that run
# real scheduler/worker/client processes on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
swift build --build-tests
if [ "$#" -gt 0 ]; then
    exec swift test --skip-build "$@"
fi
# The soak (issue 14: 20,000 tasks, ratios not times) runs alone after the rest, so the load of
# the parallel tests neither slows it nor is slowed by it.
swift test --skip-build --skip SoakEndToEndTests
SWARM_SOAK_TASKS=20000 swift test --skip-build --filter SoakEndToEndTests
