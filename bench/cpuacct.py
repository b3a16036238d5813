#!/usr/bin/env python3
"""Runs a command with the kernel's process accounting on (acct(2), BSD v3 records) and prints
the CPU seconds of every Chromium process that ended meanwhile, by process kind (browser,
renderer, gpu-process, the utilities), and of the other processes by command name.

Unlike a perf profile (bench/cpuprofile.py) it adds no cost where the CPU is spent: the kernel
writes one record when a process ends, with its whole CPU time. A perf profile costs something
of its own, and not the same for both sides (docs/performance.md): compare the two sides with
this, and use perf only to see where one side's time goes. A process's kind is read from its
command line (--type=...) by a poll of /proc every 0.25 s (bench/cpuprofile.py's); a process
that ends before the poll sees it is counted as "unseen". Every Chromium process must end
within the command (render_loop and reference.js close their browser).

Needs root (acct(2)) and a kernel with CONFIG_BSD_PROCESS_ACCT_V3.

usage: bench/cpuacct.py LABEL CMD [ARG...]
e.g.   RENDER_LOOP_PROXY=1 bench/cpuacct.py ours render_loop 200 4 URL...
       bench/cpuacct.py ref node bench/reference/reference.js --n 200 --conc 4 URL...
"""

import contextlib
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

from bench import machine_busy
from cpuprofile import Kinds

# struct acct_v3 (linux/acct.h): flag, version, tty, exitcode, uid, gid, pid, ppid, btime,
# etime (float), utime, stime, mem, io, rw, minflt, majflt, swaps (comp_t), comm[16].
RECORD = struct.Struct("<BBHIIIIIIf8H16s")
# comp_t counts ticks of AHZ per second (linux/acct.h).
AHZ = 100


def comp_t(v):
    """A 13-bit mantissa with a 3-bit base-8 exponent."""
    return (v & 0x1FFF) << (3 * (v >> 13))


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    for off in range(0, len(data) - RECORD.size + 1, RECORD.size):
        r = RECORD.unpack_from(data, off)
        if r[1] != 3:
            continue
        yield {
            "pid": r[6],
            "cpu": (comp_t(r[10]) + comp_t(r[11])) / AHZ,
            "comm": r[18].split(b"\0", 1)[0].decode(errors="replace"),
        }


@contextlib.contextmanager
def accounting():
    """Process accounting on for the block; yields a list that holds every record written
    meanwhile once the block has ended."""
    libc = ctypes.CDLL(None, use_errno=True)
    got = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "acct")
        open(path, "wb").close()
        if libc.acct(path.encode()) != 0:
            raise SystemExit(f"acct(2) failed: {os.strerror(ctypes.get_errno())} (needs root)")
        try:
            yield got
            time.sleep(0.5)  # the last records
        finally:
            libc.acct(None)
        got.extend(records(path))


def kind_groups(recs, kinds):
    """CPU seconds by process kind: Chromium's by its --type (kinds: a Kinds poll), the others
    by command name."""
    groups = {}
    for r in recs:
        name = r["comm"]
        if name.startswith("chrom"):
            name = kinds.kinds.get(r["pid"], "chromium:unseen").removeprefix("ref-")
            # Debian's /usr/bin/chromium is a script: its helpers (grep, uname...) are its own.
            if not name.startswith("chromium"):
                name = "chromium:launcher"
        groups[name] = groups.get(name, 0.0) + r["cpu"]
    return groups


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    label, cmd = sys.argv[1], sys.argv[2:]
    kinds = Kinds(interval=0.25)
    kinds.start()
    try:
        with accounting() as recs:
            t0, b0 = time.time(), machine_busy()
            out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()
            wall = time.time() - t0
            busy = machine_busy() - b0
    finally:
        kinds.stop = True
    groups = kind_groups(recs, kinds)
    try:
        n = json.loads(out[-1])["n"]
    except (IndexError, ValueError, KeyError):
        n = 0
    total = sum(v for k, v in groups.items() if k.startswith("chromium"))
    per = f" (per page, {n} pages)" if n else ""
    print(f"{label}: wall {wall:.1f} s; CPU-s of the processes that ended{per}")
    for k, v in sorted(groups.items(), key=lambda x: -x[1]):
        if v >= 0.05:
            print(f"  {v:8.2f}" + (f" {v / n:7.3f}" if n else "") + f"  {k}")
    print(f"  {total:8.2f}" + (f" {total / n:7.3f}" if n else "") + "  chromium in all")
    # Busy time no ended process accounts for: live processes (a page server, the databases)
    # and the kernel's own threads and interrupts.
    ended = sum(groups.values())
    print(f"  {busy:8.2f}" + (f" {busy / n:7.3f}" if n else "") + "  machine busy (/proc/stat)")
    print(f"  {busy - ended:8.2f}" + (f" {(busy - ended) / n:7.3f}" if n else "") + "  busy, not in an ended process")
    if out:
        print("  " + out[-1])


if __name__ == "__main__":
    main()
