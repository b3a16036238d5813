#!/usr/bin/env python3
"""Runs two renderers at the same time and prints each one's CPU seconds per page by process
kind (from process accounting, as bench/cpuacct.py), with the ratio of the two.

Run one after the other, two sides meet different machines: this one's speed drifts by up to
20% within minutes (docs/performance.md), more than the differences being looked for. Run
together, both meet the same drift. They also share the cores, so each one's pages per second
is not what it makes alone; what compares is the CPU a page costs each. A process belongs to
the side whose command it descends from, read from /proc every 0.25 s while it lives (a
process that ends unseen is counted apart).

Needs root (acct(2)). Each command is a shell command line that prints a JSON line with "n"
(the pages rendered) last, as render_loop and reference.js do.

usage: bench/cpupair.py LABEL_A 'CMD A' LABEL_B 'CMD B'
e.g.   bench/cpupair.py ours "RENDER_LOOP_PROXY=1 render_loop 200 4 URL..." \\
           ref "node bench/reference/reference.js --n 200 --conc 4 URL..."
"""

import json
import os
import subprocess
import sys
import threading
import time

from bench import proc_stat
from cpuacct import accounting, kind_groups
from cpuprofile import Kinds


def parent_of(pid):
    st = proc_stat(pid)
    return int(st[1][1]) if st else None


class Sides(threading.Thread):
    """Which command every process descends from (its root's pid), noted while it lives."""

    def __init__(self):
        super().__init__(daemon=True)
        self.roots, self.side, self.stop = {}, {}, False
        # Processes of neither side, never walked again. Both sides descend from this
        # script, so a walk that reaches init (or one of these) without passing it is
        # outside for good; one that reaches this script before its side's root is
        # registered is tried again at the next poll.
        self.outside = set()

    def run(self):
        me = os.getpid()
        while not self.stop:
            for d in os.listdir("/proc"):
                start = int(d) if d.isdigit() else None
                if start is None or start in self.side or start in self.outside:
                    continue
                pid = start
                for _ in range(64):
                    if pid is None or pid <= 1 or pid == me or pid in self.roots:
                        break
                    if pid in self.side or pid in self.outside:
                        break
                    pid = parent_of(pid)
                side = self.roots.get(pid) or self.side.get(pid)
                if side:
                    self.side[start] = side
                elif pid != me and (pid is None or pid <= 1 or pid in self.outside):
                    self.outside.add(start)
            time.sleep(0.25)


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    sides = [(sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])]
    kinds, tree = Kinds(interval=0.25), Sides()
    kinds.start()
    tree.start()
    procs, outs = {}, {}
    try:
        with accounting() as recs:
            t0 = time.time()
            for label, cmd in sides:
                p = subprocess.Popen(["bash", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                tree.roots[p.pid] = label
                procs[label] = p

            def wait(label, p):
                outs[label] = (p.communicate()[0].strip().splitlines(), time.time() - t0)

            waits = [threading.Thread(target=wait, args=item) for item in procs.items()]
            for w in waits:
                w.start()
            for w in waits:
                w.join()
    finally:
        kinds.stop = tree.stop = True
    per_side = {label: [] for label, _ in sides}
    unseen = 0.0
    for r in recs:
        label = tree.side.get(r["pid"])
        if label:
            per_side[label].append(r)
        else:
            unseen += r["cpu"]
    totals = {}
    for label, _ in sides:
        lines, wall = outs[label]
        try:
            result = json.loads(lines[-1])
            n = result["n"]
        except (IndexError, ValueError, KeyError):
            raise SystemExit(f"{label}: no result line")
        groups = kind_groups(per_side[label], kinds)
        totals[label] = sum(groups.values()) / n
        print(f"{label}: {n} pages in {wall:.1f} s ({n / wall:.3f} pages/s, sharing the machine); CPU-s a page")
        for k, v in sorted(groups.items(), key=lambda x: -x[1]):
            if v / n >= 0.001:
                print(f"  {v / n:7.3f}  {k}")
        print(f"  {totals[label]:7.3f}  in all")
    a, b = (label for label, _ in sides)
    print(f"CPU a page, {a} / {b}: {totals[a] / totals[b]:.3f}; processes of neither side: {unseen:.2f} CPU-s")


if __name__ == "__main__":
    main()
