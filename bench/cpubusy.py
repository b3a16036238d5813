#!/usr/bin/env python3
"""Runs a renderer (render_loop or bench/reference/reference.js), and prints its pages per second
(from the JSON line it prints last) next to the CPU seconds the whole machine was busy meanwhile
(/proc/stat: every process, short-lived renderers included, and nothing sampled, so it adds no
cost of its own, unlike a perf profile: docs/performance.md).

usage: bench/cpubusy.py LABEL CMD [ARG...]
e.g.   RENDER_LOOP_PROXY=1 bench/cpubusy.py ours render_loop 200 4 URL...
       bench/cpubusy.py ref node bench/reference/reference.js --n 200 --conc 4 URL...
"""
import json
import subprocess
import sys
import time

from bench import machine_busy


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    label, cmd = sys.argv[1], sys.argv[2:]
    b0, t0 = machine_busy(), time.time()
    out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()
    wall, b = time.time() - t0, machine_busy() - b0
    try:
        r = json.loads(out[-1])
        ps, n = r["per_second"], r["n"]
    except (IndexError, ValueError, KeyError):
        raise SystemExit(f"{label}: no result line from {cmd[0]}")
    print(f"{label:>10} wall {wall:6.1f} s  {ps:.3f} pages/s  busy {b:6.1f} CPU-s  {b / n:.3f} CPU-s/page", flush=True)


if __name__ == "__main__":
    main()
