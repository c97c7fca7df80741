#!/usr/bin/env python3
"""Fills a swarm state database with history, fast (issue 14 item 5's restart measurement).

usage: scripts/history-db.py STATE_DIR FINISHED QUEUED [OUTPUT_BYTES]

STATE_DIR/swarm.db must exist (start and stop `swarm scheduler --state-dir STATE_DIR` once).
Adds FINISHED succeeded tasks (one run each, OUTPUT_BYTES of output tail (default 2048), finished one second apart,
the latest now) and QUEUED queued tasks after them, in transactions of 50,000 rows, with the
rows a real scheduler writes (spec, info, retry as JSON; runs).
"""
import json, sqlite3, sys, time

# Every key TaskInfo writes (as a scheduler writes them: absent values as null).
TEMPLATE = {k: None for k in """artifacts attempts collectMs command complexity complexityScore contextFile contextMode
exitCode exitedAtUs extensions finalTimeoutMs finishedAt firstOutputAt firstOutputAtUs git id initialTimeoutMs
inputBytesFetched labels logFile model node output outputBursts outputBytes parent placedAt prepareMs priority reason
runs runtime signal silenceWarnings skippedArtifacts startedAt startedAtUs state submittedAt timeToFirstOutputMs
unplaceable waitReason workDir worktreeMs worktreeReused""".split()}

def main():
    directory, finished, queued = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    db = sqlite3.connect(directory + "/swarm.db")
    db.execute("PRAGMA synchronous = OFF")
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        # As swarm makes its databases (a VACUUM of the still small file).
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("VACUUM")
    (start,) = db.execute("SELECT coalesce(max(sequence), 0) FROM tasks").fetchone()
    now = int(time.time() * 1000)
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 2048
    output = ("x" * 63 + "\n") * (size // 64)
    def row(n, state):
        tid = f"h{n}"
        done = state == "succeeded"
        at = now - (finished - n) * 1000 if done else now
        spec = json.dumps({"id": tid, "command": ["echo", "hi"]}, separators=(",", ":"))
        info = dict(TEMPLATE)
        info.update({"id": tid, "state": state, "command": ["echo", "hi"], "attempts": 1 if done else 0,
                "submittedAt": at - 500, "finishedAt": at if done else None, "node": "w1" if done else None,
                "output": output if done else None, "exitCode": 0 if done else None, "priority": 0,
                "extensions": 0, "outputBursts": 0, "outputBytes": len(output) if done else 0,
                "silenceWarnings": 0, "unplaceable": False})
        return (tid, start + n + 1, state, 0, info["node"], info["attempts"], at - 500, info["finishedAt"],
                spec, json.dumps(info, separators=(",", ":")), '{"losses":0,"used":0}'), at
    batch, runs = [], []
    def flush():
        with db:
            db.executemany("INSERT INTO tasks (id, sequence, state, priority, node, attempts, submitted_at, finished_at, spec, info, retry) VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
            db.executemany("INSERT INTO runs (task_id, attempt, node, placed_at, started_at, finished_at, state) VALUES (?,?,?,?,?,?,?)", runs)
        batch.clear(); runs.clear()
    for n in range(finished + queued):
        state = "succeeded" if n < finished else "queued"
        r, at = row(n, state)
        batch.append(r)
        if state == "succeeded":
            runs.append((r[0], 1, "w1", at - 400, at - 300, at, "succeeded"))
        if len(batch) >= 50_000:
            flush()
    flush()
    db.close()

main()
