#!/usr/bin/env bash
# The main job: `swarm bench` starts a local cluster (a scheduler and 2 workers as separate
# processes on loopback), runs every workload against it and against xargs -P, prints a
# one-screen summary and writes bench-results/latest/report.{md,json,html}. Exits non-zero
# if any task was lost or duplicated. Options pass through: `bash scripts/bench.sh spawn --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
swift build -c release --product swarm
exec .build/release/swarm bench "$@"
