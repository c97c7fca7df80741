#!/bin/bash
# Soak (issue 14 item 6): N tasks in batches through a durable scheduler and 2 workers
# (16 slots each), each task printing OUTPUT bytes; after every batch, one line of samples:
# tasks done, scheduler and worker RSS (KiB), open descriptors, swarm.db size, the workers'
# data dirs, `swarm tasks --json` time; at the end the restart time (SIGTERM, start,
# listening).
#
# usage: scripts/soak.sh [--tasks N] [--quick] [--batches B] [--output BYTES] [--bin PATH] [--dir DIR] [--config FILE]
#   defaults: 1,000,000 tasks (100,000 with --quick), 10 batches, 2048 bytes (0: the task is
#   `true`), the release
#   build's swarm, a new directory under /tmp. --config: a cluster.json for the scheduler
#   (its scheduler.retention, for one).
set -euo pipefail
tasks=1000000; batches=10; output=2048; dir=""; config=""
bin="$(cd "$(dirname "$0")/.." && pwd)/.build/release/swarm"
while [ $# -gt 0 ]; do
  case "$1" in
    --tasks) tasks=$2; shift 2 ;;
    --quick) tasks=100000; shift ;;
    --batches) batches=$2; shift 2 ;;
    --output) output=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
[ -x "$bin" ] || { echo "soak.sh: no swarm binary at $bin (swift build -c release)" >&2; exit 1; }
dir=${dir:-$(mktemp -d /tmp/swarm-soak-XXXXXX)}
mkdir -p "$dir"
port=$((20000 + RANDOM % 20000))
addr=127.0.0.1:$port
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start_scheduler() {
  local args=(scheduler --state-dir "$dir/scheduler" --listen "$addr")
  [ -n "$config" ] && args+=(--config "$config")
  local t0; t0=$(date +%s.%N)
  "$bin" "${args[@]}" >> "$dir/scheduler.log" 2>&1 &
  sched=$!
  for _ in $(seq 1 3000); do
    grep -q "listening on $addr" "$dir/scheduler.log" 2>/dev/null && break
    sleep 0.01
  done
  restart_s=$(echo "$(date +%s.%N) - $t0" | bc)
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
bytes() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

start_scheduler
pids+=("$sched")
for w in 1 2; do
  "$bin" worker --scheduler "$addr" --name "w$w" --slots 16 --data-dir "$dir/w$w" > "$dir/w$w.log" 2>&1 &
  pids+=($!); eval "worker$w=$!"
done
sleep 1
per=$((tasks / batches))
line=$(printf 'head -c %d /dev/zero | tr "\\\\0" x' "$output")
printf '%-10s %-10s %-10s %-10s %-8s %-12s %-14s %-10s\n' done sched_kib w1_kib w2_kib sched_fd db_bytes worker_bytes list_s
done_n=0
for b in $(seq 1 "$batches"); do
  file="$dir/batch.jsonl"
  python3 -c "
import json, sys
command = ['sh', '-c', sys.argv[1]] if int(sys.argv[2]) > 0 else ['true']
for i in range($per):
    print(json.dumps({'command': command}))" "$line" "$output" > "$file"
  "$bin" submit --scheduler "$addr" --file "$file" --wait > /dev/null 2>&1 || true
  done_n=$((done_n + per))
  t0=$(date +%s.%N)
  "$bin" tasks --scheduler "$addr" --json > /dev/null
  list_s=$(echo "$(date +%s.%N) - $t0" | bc)
  printf '%-10s %-10s %-10s %-10s %-8s %-12s %-14s %-10s\n' "$done_n" "$(rss "$sched")" "$(rss "$worker1")" "$(rss "$worker2")" \
    "$(fds "$sched")" "$(bytes "$dir"/scheduler/swarm.db*)" "$(bytes "$dir/w1" "$dir/w2")" "$list_s"
done
kill -TERM "$sched"; wait "$sched" 2>/dev/null || true
start_scheduler
pids+=("$sched")
echo "restart (SIGTERM, start, listening): ${restart_s} s"
grep -o "restored.*" "$dir/scheduler.log" | tail -1
echo "state and logs in $dir"
