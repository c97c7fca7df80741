#!/usr/bin/env bash
# The test suite under a sanitizer: `bash scripts/sanitize.sh address|thread [swift test args]`.
# Builds into its own scratch directory (.build-asan, .build-tsan) so the normal debug build in
# .build is untouched, then runs `swift test` with the instrumented binaries (the end-to-end tests
# start the instrumented `swarm` too, so the scheduler, workers and client are checked as well).
# Reports go to files, one per process that found something (.build-*/reports/), and are
# summed up at the end; the exit status is non-zero when a test failed or a report was written.
# Slow: a cold build takes many minutes; run it under `nice -n 19` on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."

kind="${1:-}"
case "$kind" in
    address) scratch=.build-asan ;;
    thread) scratch=.build-tsan ;;
    *) echo "usage: scripts/sanitize.sh address|thread [swift test args...]" >&2; exit 64 ;;
esac
shift

bash scripts/ensure-deps.sh
# Every process writes its reports to a file of its own (log_path: PREFIX.PID), so a report
# from a `swarm` child whose stderr a test captured is not lost.
reports="${SANITIZER_REPORTS:-$PWD/$scratch/reports}"
rm -rf "$reports"
mkdir -p "$reports"
# detect_leaks=0: LeakSanitizer at process exit reports the Swift runtime's never-freed
# metadata caches and everything still reachable from globals, which buries real findings;
# ASAN_OPTIONS=detect_leaks=1 shows them anyway. ThreadSanitizer keeps going after a report
# so one run shows every race. Callers may override either.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}:log_path=$reports/asan"
# Tests that cannot run under a sanitizer skip themselves with a printed reason when they see this
# (libfaketime preloaded into an ASan binary hangs it at start).
export SWARM_SANITIZER="$kind"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1}:log_path=$reports/tsan"

swift build --build-tests --sanitize="$kind" --scratch-path "$scratch"
status=0
swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" "$@" || status=$?

found=$(find "$reports" -type f | sort)
if [ -n "$found" ]; then
    echo "sanitizer reports ($(echo "$found" | wc -l) processes), in $reports:" >&2
    grep -h "^SUMMARY:" $found | sort | uniq -c | sort -rn >&2 || true
    [ "$status" -ne 0 ] || status=1
else
    echo "no sanitizer reports" >&2
fi
exit "$status"
