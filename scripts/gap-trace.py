#!/usr/bin/env python3
"""Follows each layer boundary of `swarm bench dag` through the GapTrace files of one run
(Sources/Protocol/GapTrace.swift): from the previous layer's last exit to the layer's first
spawn, step by step, with the p50/p90 of each step's wall time and the p50 of its thread CPU.

    mkdir /tmp/trace && SWARM_GAP_TRACE=/tmp/trace swarm bench dag --out /tmp/bench
    scripts/gap-trace.py /tmp/trace            # the table
    scripts/gap-trace.py /tmp/trace --verbose 50   # every mark around boundary 50, too
"""
import sys, os, re, statistics
from collections import defaultdict

d = sys.argv[1]
verbose = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == '--verbose' else -1
procs = {}
for f in os.listdir(d):
    if not f.endswith('.trace'): continue
    lines = []
    for line in open(os.path.join(d, f)):
        p = line.rstrip('\n').split(' ', 4)
        if len(p) < 4: continue
        lines.append((int(p[0]), int(p[1]), p[2], p[3], p[4] if len(p) > 4 else ''))
    lines.sort(key=lambda x: x[0])
    procs[f] = lines
sched = next(k for k, v in procs.items() if any(l[3] == 's_turn' for l in v[:5000]))
workers = [k for k, v in procs.items() if any(l[3] == 'w_exit' for l in v)]
S = procs[sched]
idre = re.compile(r'^dag-\d+-(\d+)-(\d+)$')

def layer_of(i):
    m = idre.match(i)
    return int(m.group(1)) if m else None

# index events: (tag, id) -> (proc, index)
ev = {}
for p, lines in procs.items():
    for n, l in enumerate(lines):
        if l[3] in ('w_exit', 'w_deliver', 'w_assign', 'w_spawned', 's_result', 's_handled', 's_place', 's_send_assign'):
            ev[(l[3], l[4])] = (p, n)
layers = defaultdict(list)
for (tag, i) in ev:
    if tag == 's_place':
        L = layer_of(i)
        if L is not None: layers[L].append(i)

def t(p, n): return procs[p][n][0]
def cpu(p, n): return procs[p][n][1]
def next_tag(p, n, tag, thread=None, detail=None):
    lines = procs[p]
    for m in range(n + 1, min(len(lines), n + 200000)):
        if lines[m][3] == tag and (thread is None or lines[m][2] == thread) and (detail is None or lines[m][4] == detail):
            return m
    return None
def prev_tag(p, n, tag, thread=None):
    lines = procs[p]
    for m in range(n - 1, max(-1, n - 200000), -1):
        if lines[m][3] == tag and (thread is None or lines[m][2] == thread):
            return m
    return None

steps = defaultdict(list)
cpus = defaultdict(list)
order = []
def add(name, a, b, cpu_ab=None):
    if name not in order: order.append(name)
    steps[name].append((b - a) / 1000)
    if cpu_ab is not None: cpus[name].append(cpu_ab / 1000)

for k in sorted(layers):
    if k == 0 or (k - 1) not in layers: continue
    prev = layers[k - 1]; cur = layers[k]
    exits = [(t(*ev[('w_exit', i)]), i) for i in prev if ('w_exit', i) in ev]
    starts = [(t(*ev[('w_spawned', i)]), i) for i in cur if ('w_spawned', i) in ev]
    if len(exits) != len(prev) or len(starts) != len(cur): continue
    te, X = max(exits)
    ts, Y = min(starts)
    wp, we = ev[('w_exit', X)]
    wthread = procs[wp][we][2]
    wd = ev[('w_deliver', X)][1]
    ww = next_tag(wp, wd, 'wr', thread=wthread)
    sr = ev[('s_result', X)][1]
    sh = ev[('s_handled', X)][1]
    srd = prev_tag(sched, sr, 'rd')
    places = sorted(ev[('s_place', i)][1] for i in cur)
    sp = places[0]
    stn = prev_tag(sched, sp, 's_turn')
    ss = next_tag(sched, sp, 's_saved')
    sst = next_tag(sched, ss, 's_sync_start')
    cnt = S[sst][4]
    sfb = next_tag(sched, sst, 's_fsync_begin', detail=cnt)
    sfe = next_tag(sched, sst, 's_fsync_end', detail=cnt)
    sseen = next_tag(sched, sst, 's_sync_seen', detail=cnt)
    sends = sorted(ev[('s_send_assign', i)][1] for i in cur)
    sa = sends[0]
    swr = next_tag(sched, sa, 'wr', thread=S[sa][2])
    yp, ya = ev[('w_assign', Y)]
    ysp = ev[('w_spawned', Y)][1]
    yrd = prev_tag(yp, ya, 'rd', thread=procs[yp][ya][2])
    # the first-sent task's own worker read
    first_sent = S[sa][4]
    fp, fa = ev[('w_assign', first_sent)]
    frd = prev_tag(fp, fa, 'rd', thread=procs[fp][fa][2])
    add('A worker: last exit seen -> its result delivered', te, t(wp, wd), cpu(wp, wd) - cpu(wp, we))
    add('B -> result written to socket', t(wp, wd), t(wp, ww), cpu(wp, ww) - cpu(wp, wd))
    add('C -> scheduler read (rd)', t(wp, ww), t(sched, srd))
    add('D rd -> s_result of it', t(sched, srd), t(sched, sr), cpu(sched, sr) - cpu(sched, srd))
    add('E handling the last result (release)', t(sched, sr), t(sched, sh), cpu(sched, sh) - cpu(sched, sr))
    add('F -> first placement', t(sched, sh), t(sched, sp), cpu(sched, sp) - cpu(sched, sh))
    add('G -> turn saved', t(sched, sp), t(sched, ss), cpu(sched, ss) - cpu(sched, sp))
    stk = next_tag(sched, sp, 's_taken')
    scm = next_tag(sched, sp, 's_commit')
    swn = next_tag(sched, sp, 's_written')
    if stk is not None and scm is not None and swn is not None and stk < scm < swn < ss:
        add('  G1 placements sent to the turn, changes taken', t(sched, sp), t(sched, stk), cpu(sched, stk) - cpu(sched, sp))
        add('  G2 rows written (to COMMIT)', t(sched, stk), t(sched, scm), cpu(sched, scm) - cpu(sched, stk))
        add('  G3 COMMIT', t(sched, scm), t(sched, swn), cpu(sched, swn) - cpu(sched, scm))
    add('H -> its sync started', t(sched, ss), t(sched, sst), cpu(sched, sst) - cpu(sched, ss))
    add('I -> sync thread runs', t(sched, sst), t(sched, sfb))
    add('J fdatasync', t(sched, sfb), t(sched, sfe), cpu(sched, sfe) - cpu(sched, sfb))
    add('K -> loop sees sync end', t(sched, sfe), t(sched, sseen))
    add('L -> first assign sent', t(sched, sseen), t(sched, sa), cpu(sched, sa) - cpu(sched, sseen))
    add('M -> written (wr)', t(sched, sa), t(sched, swr), cpu(sched, swr) - cpu(sched, sa))
    add('N -> its worker reads (rd)', t(sched, swr), t(fp, frd))
    add('O rd -> w_assign', t(fp, frd), t(fp, fa), cpu(fp, fa) - cpu(fp, frd))
    add('P w_assign -> spawned (that task)', t(fp, fa), t(*ev[('w_spawned', first_sent)]),
        cpu(*ev[('w_spawned', first_sent)]) - cpu(fp, fa))
    # Inside that spawn: the parent waits in posix_spawn (vfork) until the child has exec'd.
    fc = next_tag(fp, fa, 'w_spawn_call', thread=procs[fp][fa][2])
    fr = next_tag(fp, fa, 'w_spawn_ret', thread=procs[fp][fa][2])
    if fc is not None and fr is not None:
        add('  of which posix_spawn (parent blocked)', t(fp, fc), t(fp, fr), cpu(fp, fr) - cpu(fp, fc))
    add('= to first placement', te, t(sched, sp))
    add('= placement -> first start', t(sched, sp), ts)
    add('= gap (mono)', te, ts)
    add('x first start: its worker rd -> w_assign', t(yp, yrd), t(yp, ya))
    add('x first start: s_send -> w_assign', t(*ev[('s_send_assign', Y)]), t(yp, ya))
    add('x sched turn start -> first placement', t(sched, stn), t(sched, sp), cpu(sched, sp) - cpu(sched, stn))
    if verbose == k:
        a = min(te, t(wp, wd)) - 2000; b = ts + 500
        for p, lines in procs.items():
            pass
        allv = []
        for p, lines in procs.items():
            for l in lines:
                if a <= l[0] <= b and l[3] not in ('w_msg',): allv.append((l[0], p, l))
        allv.sort()
        for x in allv:
            print('%8.3f %-12s cpu=%d %s %s %s' % ((x[0] - te) / 1000, x[1], x[2][1], x[2][2], x[2][3], x[2][4][:40]))

def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(q * len(v)))]
print('boundaries', len(steps['= gap (mono)']))
print('%-48s %8s %8s %8s %9s' % ('step', 'p50 ms', 'p90 ms', 'mean', 'cpu p50'))
for name in order:
    v = steps[name]
    c = cpus.get(name)
    print('%-48s %8.3f %8.3f %8.3f %9s' % (name, statistics.median(v), pct(v, 0.9), statistics.mean(v),
                                           '%.3f' % statistics.median(c) if c else ''))
