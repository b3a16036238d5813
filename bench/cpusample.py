#!/usr/bin/env python3
"""Runs a command and prints its last output line, then the CPU seconds its own process and
its descendants used, by command name, Chromium's by process type (browser, renderer,
renderer:webui for the browser's own UI, gpu-process, utility:<service>), and how many
processes of each were seen. It samples /proc every 0.3 s and counts a process's CPU as of
its last sample: a process that lives less than that may be missed, one that ends between
samples is cut short (machine-wide CPU from /proc/stat counts everything). docs/performance.md uses it to compare where CPU goes, e.g.:

    RENDER_LOOP_PROXY=1 bench/cpusample.py target/release/examples/render_loop 40 4 URL...
    (cd bench/reference && ../cpusample.py node reference.js --kind pdf --n 40 --conc 4 URL...)
"""
import os, subprocess, sys, time
HZ = os.sysconf('SC_CLK_TCK')
KINDS = {}  # pid -> Chromium process type, read while its command line could be read
def name(pid, stat):
    comm = stat.split('(', 1)[1].rsplit(')', 1)[0]
    if 'chrom' not in comm:
        return comm
    try:
        args = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\0', b' ').split()
    except OSError:
        args = []
    if not args:  # exiting: its command line is gone
        return KINDS.get(pid, comm)
    kind, sub = 'browser', ''
    for a in args:
        if a.startswith(b'--type='):
            kind = a[7:].decode()
        elif a.startswith(b'--utility-sub-type='):
            sub = ':' + a[19:].decode().rsplit('.', 1)[-1]
    if b'--top-chrome-webui' in args:  # the browser's own UI (omnibox popup, ...)
        sub += ':webui'
    KINDS[pid] = f'chromium {kind}{sub}'
    return KINDS[pid]
def tree():
    par = {}
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                st = open(f'/proc/{d}/stat').read()
                rest = st.rsplit(')', 1)[1].split()
                par[int(d)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / HZ, name(d, st))
            except Exception:
                pass
    return par
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
seen = {}
while p.poll() is None:
    par = tree()
    def under(pid):
        while pid in par:
            if pid == p.pid: return True
            pid = par[pid][0]
            if pid <= 1: return False
        return False
    for pid, (pp, cpu, comm) in par.items():
        if under(pid):
            seen[pid] = (cpu, comm)
    time.sleep(0.3)
out = p.stdout.read().decode()
own = {}
count = {}
for pid, (cpu, comm) in seen.items():
    key = 'self' if pid == p.pid else comm
    own[key] = own.get(key, 0) + cpu
    count[key] = count.get(key, 0) + 1
print(out.strip().splitlines()[-1] if out.strip() else '')
print({k: round(v, 1) for k, v in sorted(own.items(), key=lambda x: -x[1])})
print('processes:', {k: n for k, n in sorted(count.items(), key=lambda x: -x[1])})
