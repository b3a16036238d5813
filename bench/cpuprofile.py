#!/usr/bin/env python3
"""Runs a command under a machine-wide `perf record` and prints the CPU seconds it sampled, by
process kind and thread name: Chromium's browser process, its renderers, its utility (network)
process and so on, told apart by their --type=... flag. Chromium started by node (the
reference renderer) is counted apart, as ref-chromium:..., so one profile of a whole
`BENCH_ONLY=a make bench` run splits both sides of (a).

Unlike a /proc sampler (bench/cpusample.py) it misses no short-lived process: perf samples
every CPU every 1/FREQ s, whichever thread runs. But perf's own cost is not the same for every
program: under it the reference slowed down far more than the worker (docs/performance.md,
session 9), so compare two sides with bench/cpuacct.py, and use this to see where one side's
time goes. Needs perf and perf_event_paranoid <= 2 (as
root, any value).

usage: bench/cpuprofile.py [--freq 499] [--top 25] -- CMD [ARG...]
e.g.   bench/cpuprofile.py -- node bench/reference/reference.js --n 40 --conc 4 URL...
       BENCH_ONLY=a BENCH_A_ROUNDS=1 bench/cpuprofile.py -- bash bench/run.sh
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

from bench import proc_stat


def under_node(pid):
    """Whether the process descends from node: the reference's Chromium, which the profile of a
    whole `make bench` run tells apart from the worker's this way."""
    for _ in range(32):
        st = proc_stat(pid)
        if st is None:
            return False
        if st[0] == "node":
            return True
        pid = int(st[1][1])
        if pid <= 1:
            return False
    return False


def kind_of(pid):
    """What a process is: chromium:browser, chromium:renderer, chromium:utility..., or its
    command name. The reference's Chromium (under node) is ref-chromium:..."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read().rstrip(b"\0")
        # Chromium's children rewrite their command line as one space-separated string.
        argv = raw.split(b"\0") if b"\0" in raw else raw.split(b" ")
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        return None
    exe = os.path.basename(argv[0].decode(errors="replace")) if argv and argv[0] else comm
    if "chrom" in exe:
        kind = "browser"
        for a in argv:
            if a.startswith(b"--type="):
                kind = a[7:].decode()
            if a.startswith(b"--utility-sub-type="):
                kind += ":" + a.decode().rsplit(".", 1)[-1]
        return f"{'ref-' if under_node(pid) else ''}chromium:{kind}"
    return comm


class Kinds(threading.Thread):
    """Notes every process's kind every `interval` s (a renderer lives far longer than 50 ms). A
    kind is read again until it settles: a process just forked still shows its parent's command
    line. Reading every process every time cost the profile a tenth of a core of its own."""

    # How long a process's kind is read again after it was first seen.
    SETTLE_S = 2.0

    def __init__(self, interval=0.05):
        super().__init__(daemon=True)
        self.kinds, self.first_seen, self.stop = {}, {}, False
        self.interval = interval

    def run(self):
        while not self.stop:
            now = time.time()
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                pid = int(d)
                seen = self.kinds.get(pid)
                # A child seen before it took its own command line showed its parent's (the
                # browser's, the zygote's, a launcher script's); what it shows later is what
                # it is. Chromium's browser and zygote can still fork after SETTLE_S.
                settled = seen and (
                    ("chromium:" in seen and seen.split(":", 1)[1] not in ("browser", "zygote"))
                    or ("chromium:" not in seen and now - self.first_seen[pid] > self.SETTLE_S)
                )
                if settled:
                    continue
                k = kind_of(d)
                if k and seen and seen.startswith("ref-") and not k.startswith("ref-"):
                    # Its node has exited first (at the end of the reference's run).
                    k = "ref-" + k
                if k:
                    self.kinds[pid] = k
                    self.first_seen.setdefault(pid, now)
            time.sleep(self.interval)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--freq", type=int, default=499)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("no command given")
    kinds = Kinds()
    kinds.start()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        t0 = time.time()
        rc = subprocess.call(["perf", "record", "-q", "-a", "-F", str(a.freq), "-o", data, "--", *cmd])
        wall = time.time() - t0
        kinds.stop = True
        # One line per sample: the thread's name, then process id/thread id.
        script = subprocess.run(
            ["perf", "script", "-i", data, "-F", "comm,pid,tid"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    samples = {}
    line = re.compile(r"^\s*(.*?)\s+(\d+)/(\d+)\s*$")
    for row in script.splitlines():
        m = line.match(row)
        if m and m.group(2) != "0":  # pid 0: idle
            key = (int(m.group(2)), m.group(1))
            samples[key] = samples.get(key, 0) + 1
    by_kind, by_thread = {}, {}
    for (pid, thread), n in samples.items():
        secs = n / a.freq
        kind = kinds.kinds.get(pid, f"{thread} (exited unseen)")
        by_kind[kind] = by_kind.get(kind, 0.0) + secs
        by_thread[(kind, thread)] = by_thread.get((kind, thread), 0.0) + secs
    total = sum(by_kind.values())
    print(f"wall {wall:.1f} s, busy {total:.1f} CPU-s (sampled at {a.freq} Hz per CPU)")
    print("by process kind:")
    for k, v in sorted(by_kind.items(), key=lambda x: -x[1]):
        if v >= 0.05:
            print(f"  {v:7.2f}  {k}")
    print(f"top {a.top} threads (process kind / thread name):")
    for (k, t), v in sorted(by_thread.items(), key=lambda x: -x[1])[: a.top]:
        print(f"  {v:7.2f}  {k} / {t}")
    sys.exit(rc)


if __name__ == "__main__":
    main()
