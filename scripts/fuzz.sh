#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS: `bash scripts/fuzz.sh TARGET SECONDS [libFuzzer options]`.
# TARGET: frames, json, handshake, taskfile, clusterfile (see Fuzz/Sources/fuzz-TARGET/main.swift
# for what each checks). Builds the fuzz package (Fuzz/, its own scratch directory .build-fuzz)
# when needed, runs from the seed corpus in Fuzz/corpus/TARGET (read only) and keeps what it
# finds in a scratch directory, SWARM_FUZZ_DIR (default /tmp/swarm-fuzz)/TARGET: `corpus/` for
# new inputs, `crash-*`/`oom-*`/`timeout-*` for failures, `log` for the output. Prints the
# executions and coverage at the end; exits non-zero when the target found a failure.
# CPU-bound: on a shared machine, `nice -n 19 bash scripts/fuzz.sh ...`.
set -euo pipefail
cd "$(dirname "$0")/.."

targets="frames json handshake taskfile clusterfile"
target="${1:-}"
seconds="${2:-}"
if [[ -z "$target" || ! " $targets " =~ " $target " || ! "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]   (TARGET: $targets)" >&2
    exit 64
fi
shift 2

bash scripts/ensure-deps.sh
scratch=.build-fuzz
# -sanitize=fuzzer,address: every Swift module gets libFuzzer's coverage; libFuzzer and ASan
# are linked in. lld, not gold: libFuzzer's own main is overridden by SwiftPM's alias of `main`
# to the target's entry (which calls LLVMFuzzerRunDriver), and gold crashes on that duplicate.
# -enable-testing: the JSON target reads MessageCodec.Probe through @testable.
swift build -c release --package-path Fuzz --scratch-path "$scratch" --product "fuzz-$target" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld -Xswiftc -enable-testing

work="${SWARM_FUZZ_DIR:-/tmp/swarm-fuzz}/$target"
mkdir -p "$work/corpus"
# The bounds of each target's inputs. frames: no allocation may reach 8 MiB, though the
# decoder's limit is 16 MiB in some runs: a length header alone must not reserve memory.
case "$target" in
    frames) limits=(-max_len=65536 -malloc_limit_mb=8) ;;
    *) limits=(-max_len=65536) ;;
esac

# The Swift runtime's backtracer would catch the crash before libFuzzer writes the input out.
# Leaks are not checked: every input would "leak" the runtime's metadata caches.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
status=0
"$scratch/release/fuzz-$target" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -detect_leaks=0 "${limits[@]}" -artifact_prefix="$work/" "$@" \
    "$work/corpus" "Fuzz/corpus/$target" > "$work/log" 2>&1 || status=$?

# libFuzzer's last status line ("#N DONE cov: C ft: F corp: U/S ...") and final stats.
last=$(grep -E '^#[0-9]+' "$work/log" | tail -1 || true)
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$work/log" | tail -1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
echo "fuzz-$target: ${runs:-?} executions in ${seconds} s (${rate:-?}/s), coverage ${cov:-?} edges, ${ft:-?} features, corpus ${corp:-?} inputs, peak RSS ${rss:-?} MB"
if [ "$status" -ne 0 ]; then
    echo "fuzz-$target: FAILED (exit $status); input and report: $(ls "$work"/crash-* "$work"/oom-* "$work"/timeout-* 2>/dev/null | tr '\n' ' ')" >&2
    grep -E 'FUZZ PROPERTY BROKEN|ERROR: (AddressSanitizer|libFuzzer)|Fatal error' "$work/log" | head -5 >&2 || true
    echo "full output: $work/log" >&2
fi
exit "$status"
