#!/usr/bin/env python3
"""Runs a command and prints its throughput lines (wrk's) and the CPU seconds every process on
the machine used meanwhile, by command name (PostgreSQL's backends together), from /proc."""
import os, subprocess, sys, time
HZ = os.sysconf('SC_CLK_TCK')
def snap():
    d = {}
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            st = open(f'/proc/{p}/stat').read()
        except OSError:
            continue
        comm = st.split('(', 1)[1].rsplit(')', 1)[0]
        r = st.rsplit(')', 1)[1].split()
        d[p] = (comm, (int(r[11]) + int(r[12])) / HZ)
    return d
a = snap(); t = time.time()
out = subprocess.run(sys.argv[1:], capture_output=True, text=True).stdout
b = snap(); wall = time.time() - t
cpu = {}
for p, (c, v) in b.items():
    k = 'postgres' if c.startswith('postgres') else c
    cpu[k] = cpu.get(k, 0) + v - a.get(p, (c, 0))[1]
print('\n'.join(l for l in out.splitlines() if 'Requests/sec' in l or '99%' in l or '50%' in l))
print(f'wall {wall:.1f} s; CPU seconds:', {k: round(v, 2) for k, v in sorted(cpu.items(), key=lambda x: -x[1])[:8]})
