#!/bin/sh
# A fake agent CLI for tests, shaped like `claude -p --model M` with the prompt on stdin.
# Behaviour comes from the task's environment:
#   FAKE_BURSTS=N FAKE_BURST_GAP=S  print N bursts, S seconds apart
#   FAKE_SILENCE=S                  then stay silent S seconds
#   FAKE_IGNORE_TERM=1              ignore SIGTERM (inherited by grandchildren)
#   FAKE_GRANDCHILDREN=N            start N background `sleep` grandchildren first
#   FAKE_MARKS=FILE                 append "S <ns>" at start and "E <ns>" at the end
#   FAKE_QUIET=1                    print nothing at start (no model/prompt/env lines)
#   FAKE_EXIT=CODE                  exit code
model=""
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --version) echo "fake-agent 1.0 (Claude Code)"; exit 0 ;;
        *) shift ;;
    esac
done
[ -n "$FAKE_MARKS" ] && echo "S $(date +%s%N)" >> "$FAKE_MARKS"
[ "${FAKE_IGNORE_TERM:-0}" = 1 ] && trap '' TERM
prompt=$(cat)
if [ "${FAKE_QUIET:-0}" != 1 ]; then
    echo "model=$model"
    echo "prompt=$prompt"
    echo "env task=$SWARM_TASK_ID parent=$SWARM_PARENT_ID context=$SWARM_CONTEXT_FILE model=$SWARM_MODEL scheduler=$SWARM_SCHEDULER"
fi
i=0
while [ "$i" -lt "${FAKE_GRANDCHILDREN:-0}" ]; do
    sleep 1000 > /dev/null 2>&1 &
    i=$((i + 1))
done
i=0
while [ "$i" -lt "${FAKE_BURSTS:-0}" ]; do
    sleep "${FAKE_BURST_GAP:-0.1}"
    echo "burst $i"
    i=$((i + 1))
done
[ -n "$FAKE_SILENCE" ] && sleep "$FAKE_SILENCE"
[ -n "$FAKE_MARKS" ] && echo "E $(date +%s%N)" >> "$FAKE_MARKS"
exit "${FAKE_EXIT:-0}"
