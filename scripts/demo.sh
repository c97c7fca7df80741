#!/usr/bin/env bash
# The main job: a local cluster (scheduler + 3 workers x 4 slots on loopback) runs a visible
# workload and a batch of 1,000 tasks, prints its report, and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
swift build -c release --product swarm
exec .build/release/swarm demo "$@"
