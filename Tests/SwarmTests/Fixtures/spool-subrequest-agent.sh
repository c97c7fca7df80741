#!/bin/sh
# An agent that asks for a sub-agent the original coordinator's way, through the spool
# directory $1: it drops a request naming itself as parent (written as .tmp, then renamed)
# and waits, at most 20 s, for the result file, which it prints.
dir="$1"
cat > /dev/null
sub="$SWARM_TASK_ID-sub"
printf '{"requestId": "%s", "parentRequestId": "%s", "agentRole": "helper", "runtime": "fake", "task": {"objective": "sub work"}}\n' \
    "$sub" "$SWARM_TASK_ID" > "$dir/requests/$sub.json.tmp"
mv "$dir/requests/$sub.json.tmp" "$dir/requests/$sub.json"
i=0
while [ ! -f "$dir/results/$sub.json" ]; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then echo "no result for $sub"; exit 1; fi
    sleep 0.1
done
echo "sub result:"
cat "$dir/results/$sub.json"
