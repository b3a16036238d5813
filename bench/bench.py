#!/usr/bin/env python3
"""`make bench`: measures a running stack (started by bench/run.sh) and prints one table.

(a) 200 mixed pages in one async batch, submit to completed, pages/s, next to the reference
    renderer (bench/reference) on the same pages at the same concurrency;
(b) sync latency p50/p95 over 50 sequential single-page requests, next to the reference's
    single render;
(c) api submit throughput (async, one URL) and batch-status reads with wrk, with p99;
(d) completion-to-webhook latency p50/p95 (a receiver here timestamps arrivals against the
    job's finished_at);
(e) peak memory of the worker and its Chromium, and whether it grows over a soak.

Standard library only; psql, wrk and node come from run.sh.
"""

import argparse
import http.server
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime

# How long the worker's message pump runs on after its last job (crates/worker/src/browser.rs).
PUMP_LINGER_S = 30
PAGES = ["invoice.html", "report.html", "gallery.html", "dashboard.html"]
# The same file as the reference makes: A4, no margins, backgrounds printed.
PDF_OPTIONS = {
    "single_page": False,
    "pdf_options": {
        "page_size": "A4",
        "margins": {"top": 0, "bottom": 0, "left": 0, "right": 0},
        "print_background": True,
    },
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def q(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


class Api:
    def __init__(self, base, key):
        self.base, self.key = base, key

    def call(self, method, path, body=None, timeout=300):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("X-API-Key", self.key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def submit(self, urls, **extra):
        body = {"url": urls if len(urls) > 1 else urls[0], "async_mode": True, **PDF_OPTIONS, **extra}
        status, resp = self.call("POST", "/v1/convert/url-to-pdf", body)
        if status != 202:
            raise SystemExit(f"submit answered {status}: {resp}")
        return resp["batch_id"]

    def wait_batch(self, batch_id, within=3600):
        deadline = time.time() + within
        while time.time() < deadline:
            status, resp = self.call("GET", f"/v1/convert/batch/{batch_id}")
            if status == 200 and resp.get("status") != "processing":
                return resp
            # A real client polls every second or so; 0.25 s keeps the overshoot of the measured
            # time small (under 0.5% of (a)'s batch) while the polling itself, with its JSON of
            # every job parsed in Python, stays cheap. At 0.05 s it used 0.045 CPU-s per page of
            # (a), ~7% of the machine, which the reference (measured in-process) does not pay.
            time.sleep(0.25)
        raise SystemExit(f"batch {batch_id} did not finish")


def psql(url, sql):
    out = subprocess.run(["psql", url, "-tAF", "\t", "-c", sql], check=True, capture_output=True, text=True)
    return [line.split("\t") for line in out.stdout.strip().splitlines() if line]


def proc_stat(pid):
    """A process's command name and the fields of /proc/PID/stat after it (the name may hold
    spaces and parentheses); None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return None
    head, rest = st.rsplit(")", 1)
    return head.split("(", 1)[1], rest.split()


def cpu_seconds(fields):
    """User plus system time, in seconds, from proc_stat's fields."""
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy():
    """CPU seconds every core has spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class Busiest(threading.Thread):
    """Which processes used the CPU while it runs, every half second: (c)'s p99 missed its goal
    in two runs of a dozen (docs/performance.md) and not when run again, so every run of (c)
    keeps what else ran beside the api, to be read when it misses again."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.intervals = False, []

    @staticmethod
    def snap():
        out = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                st = proc_stat(d)
                if st:
                    out[int(d)] = (st[0], cpu_seconds(st[1]))
        return out

    def run(self):
        prev, busy, t0 = self.snap(), machine_busy(), time.time()
        while not self.stop:
            time.sleep(0.5)
            cur, now_busy = self.snap(), machine_busy()
            by_name = {}
            for pid, (name, secs) in cur.items():
                # A process started within the interval counts whole; one that ended is missed.
                used = secs - prev[pid][1] if pid in prev else secs
                by_name[name] = by_name.get(name, 0.0) + used
            top = sorted(by_name.items(), key=lambda kv: -kv[1])[:5]
            self.intervals.append({
                "t": round(time.time() - t0, 1),
                "busy": round(now_busy - busy, 2),
                "top": [[k, round(v, 2)] for k, v in top if v > 0],
            })
            prev, busy = cur, now_busy


class Cpu:
    """CPU seconds used: machine-wide, per cpuacct cgroup of run.sh (each counts every process
    under it, however short-lived: the worker's Chromium, the reference's), and by the live
    PostgreSQL and RabbitMQ processes (their connections are pooled, so none exits meanwhile)."""

    SERVERS = {"postgresql": "postgres", "rabbitmq": "beam.smp"}

    def __init__(self, root, worker_pid):
        self.root, self.worker_pid = root, worker_pid

    def snap(self):
        out = {"machine": machine_busy()}
        if self.root:
            for group in os.listdir(self.root):
                try:
                    with open(os.path.join(self.root, group, "cpuacct.usage")) as f:
                        out[group] = int(f.read()) / 1e9
                except (OSError, ValueError):
                    pass
        worker = proc_stat(self.worker_pid)
        if worker:
            # Its own threads only: Chromium's processes are not reaped while it runs.
            out["worker_process"] = cpu_seconds(worker[1])
        for name in self.SERVERS:
            out[name] = 0.0
        for d in os.listdir("/proc"):
            st = proc_stat(d) if d.isdigit() else None
            for name, prefix in self.SERVERS.items():
                if st and st[0].startswith(prefix):
                    out[name] += cpu_seconds(st[1])
        return out

    def join(self, group):
        """For a child process: enter the cgroup `group` (a preexec_fn), if accounting is on."""
        if not self.root:
            return None
        path = os.path.join(self.root, group)
        os.makedirs(path, exist_ok=True)

        def enter():
            with open(os.path.join(path, "tasks"), "w") as f:
                f.write(str(os.getpid()))

        return enter

    @staticmethod
    def delta(a, b):
        return {k: v - a.get(k, 0.0) for k, v in b.items()}


def parse_ts(s):
    return datetime.fromisoformat(s.strip()).timestamp()


class Memory(threading.Thread):
    """Samples the proportional set size (shared pages counted once) of the worker and every
    process under it (Chromium's), and the worker's own resident size."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], False
        # Paused while (a) is measured: reading every Chromium process's smaps_rollup four
        # times a second costs CPU, which the reference's run would pay less of.
        self.paused = False

    def tree(self):
        """The worker and every process under it, and the worker's own children."""
        children = {}
        for d in os.listdir("/proc"):
            st = proc_stat(d) if d.isdigit() else None
            if st:
                children.setdefault(int(st[1][1]), []).append(int(d))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, []))
        return out, children.get(self.pid, [])

    @staticmethod
    def pss_kib(pid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    @staticmethod
    def rss_kib(pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    @staticmethod
    def is_browser(pid):
        """A Chromium browser process (its helpers all carry a --type= switch)."""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            return False
        # Helpers rewrite their command line into one string; the browser keeps its argv.
        name = os.path.basename(raw.split(b"\0")[0])
        return name in (b"chromium", b"chrome", b"chrome-headless-shell") and b"--type=" not in raw

    def run(self):
        while not self.stop and os.path.exists(f"/proc/{self.pid}"):
            if self.paused:
                time.sleep(0.25)
                continue
            pids, own = self.tree()
            total = sum(self.pss_kib(p) for p in pids)
            # The worker launches each browser itself: two while a recycled browser's
            # successor starts and takes over (engine item 9).
            browsers = sum(1 for p in own if self.is_browser(p))
            self.samples.append((time.time(), total, self.rss_kib(self.pid), len(pids), browsers))
            time.sleep(0.25)

    def between(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] <= t1]


class Hooks(http.server.ThreadingHTTPServer):
    """A webhook receiver that timestamps each arrival."""

    def __init__(self, port):
        self.arrivals = {}
        self.lock = threading.Lock()
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.end_headers()
                try:
                    payload = json.loads(body)
                    with hooks.lock:
                        hooks.arrivals.setdefault(payload["batch_id"], at)
                except (ValueError, KeyError):
                    pass

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", port), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def reference(args, n, conc, urls, cpu=None, flags=None):
    """reference.js's run; `flags="baseline"` launches Chromium as the issue's baseline does
    (REFERENCE_FLAGS in reference.js), otherwise with the worker's launch flags."""
    env = dict(os.environ, REFERENCE_FLAGS=flags) if flags else None
    out = subprocess.run(
        ["node", os.path.join(args.ref_dir, "reference.js"), "--kind", "pdf", "--n", str(n), "--conc", str(conc), *urls],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=cpu.join("reference") if cpu else None,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(args, url, lua=None, duration=10):
    cmd = ["wrk", "-t", "2", "-c", str(args.wrk_connections), "-d", f"{duration}s", "--latency", "-H", f"X-API-Key: {args.key}"]
    if lua:
        cmd += ["-s", lua]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    p99 = float(m.group(1)) * UNITS[m.group(2)]
    m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    p50 = float(m.group(1)) * UNITS[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": int(bad.group(1)) if bad else 0, "requests": total}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--site", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--worker-pid", type=int, required=True)
    ap.add_argument("--hook-port", type=int, default=18098)
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--ref-dir", required=True)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--a-rounds", type=int, default=2, help="rounds of (a), each side once a round")
    ap.add_argument(
        "--a-baseline",
        type=int,
        default=1,
        help="1: (a) also measures the reference launched as the issue's baseline (its flags only)",
    )
    ap.add_argument("--sync", type=int, default=50)
    ap.add_argument("--hooks", type=int, default=40)
    ap.add_argument("--soak", type=int, default=1000)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--wrk-connections", type=int, default=32)
    ap.add_argument("--json", default="")
    ap.add_argument("--cgroups", default="", help="run.sh's cpuacct cgroup directory, for the CPU split of (a)")
    ap.add_argument("--only", default="abcde", help="the figures to measure, e.g. a (default: abcde)")
    args = ap.parse_args()
    api = Api(args.api, args.key)
    site = args.site.rstrip("/")
    loads = [loadavg()]
    mem = Memory(args.worker_pid)
    mem.start()
    hooks = Hooks(args.hook_port)
    res = {"concurrency": args.concurrency}
    cpu = Cpu(args.cgroups, args.worker_pid)

    log("warming up")
    for page in PAGES:
        status, resp = api.call("POST", "/v1/convert/url-to-pdf", {"url": f"{site}/{page}", **PDF_OPTIONS})
        if status != 200:
            raise SystemExit(f"warm-up render of {page} answered {status}: {resp}")

    want = set(args.only)
    if not want or not want <= set("abcde"):
        raise SystemExit(f"--only takes letters of abcde, not {args.only!r}")

    # (a) one async batch of mixed pages, submit to completed.
    if "a" in want:
        mem.paused = True
        measure_a(api, args, site, cpu, res)
        mem.paused = False
        loads.append(loadavg())
    if "b" in want:
        measure_b(api, args, site, res)
        loads.append(loadavg())
    if "d" in want or "c" in want:
        measure_d(api, args, site, hooks, res)
        loads.append(loadavg())
    if "e" in want:
        measure_e(api, args, site, mem, res)
        loads.append(loadavg())
    if "c" in want:
        measure_c(args, site, mem, res)
        loads.append(loadavg())
    res["loadavg"] = loads
    print_table(args, res, loads)


def measure_a(api, args, site, cpu, res):
    """(a) in rounds, turning which side goes first (ours then the reference, then the
    reference then ours, ...): the machine's speed drifts by several per cent within minutes,
    and a single pair measured one after the other carries that drift into the ratio. With
    --a-baseline 1 a third side, the reference launched as the issue's baseline, joins the turn."""
    rounds, cpu_ours = [], {}
    # The reference's sides: runs and CPU by reference.js's REFERENCE_FLAGS (None: the
    # worker's flags; "baseline": the issue's baseline).
    flagged = [None, "baseline"] if args.a_baseline else [None]
    runs = {flags: ([], {}) for flags in flagged}

    def ours(r):
        urls = [f"{site}/{PAGES[i % len(PAGES)]}?n={i}&r={r}" for i in range(args.batch)]
        log(f"(a) round {r + 1}: batch of {args.batch} pages")
        c0 = cpu.snap()
        t0 = time.time()
        batch_id = api.submit(urls)
        done = api.wait_batch(batch_id)
        secs = time.time() - t0
        add(cpu_ours, Cpu.delta(c0, cpu.snap()))
        rounds.append({"pages": args.batch, "seconds": secs, "per_second": args.batch / secs, "status": done.get("status")})
        # The worker's message pump goes on for 30 s after its last job (PUMP_LINGER in
        # crates/worker/src/browser.rs), about 0.13 of a core: the reference waits until it
        # stops, so that it does not run on a machine the idle worker still uses.
        time.sleep(PUMP_LINGER_S + 3)

    def theirs(flags):
        def side(r):
            how = "with the baseline's launch flags" if flags else "with the worker's launch flags"
            log(f"(a) round {r + 1}: reference {how}, {args.batch} pages at {args.concurrency} at once")
            c0 = cpu.snap()
            runs[flags][0].append(reference(args, args.batch, args.concurrency, [f"{site}/{p}" for p in PAGES], cpu, flags))
            add(runs[flags][1], Cpu.delta(c0, cpu.snap()))

        return side

    sides = [ours] + [theirs(flags) for flags in flagged]
    for r in range(args.a_rounds):
        # Each round turns the order by one: every side goes first, second (and last) in turn.
        k = r % len(sides)
        for side in sides[k:] + sides[:k]:
            side(r)
    secs = sum(x["seconds"] for x in rounds)
    res["a"] = {"pages": args.batch, "rounds": rounds, "seconds": secs, "per_second": args.batch * len(rounds) / secs}
    res["a_cpu"] = {k: v / len(rounds) for k, v in cpu_ours.items()}
    for flags, key in ((None, "a_ref"), ("baseline", "a_base")):
        if flags in runs:
            refs, used = runs[flags]
            ref_secs = sum(x["seconds"] for x in refs)
            res[key] = {"rounds": refs, "seconds": ref_secs, "per_second": args.batch * len(refs) / ref_secs}
            res[f"{key}_cpu"] = {k: v / len(refs) for k, v in used.items()}


def add(total, delta):
    for k, v in delta.items():
        total[k] = total.get(k, 0.0) + v


def measure_b(api, args, site, res):
    """(b) sequential sync requests of one page."""
    log(f"(b) {args.sync} sequential sync requests")
    lat = []
    for i in range(args.sync):
        t = time.time()
        status, resp = api.call("POST", "/v1/convert/url-to-pdf", {"url": f"{site}/invoice.html?s={i}", **PDF_OPTIONS})
        lat.append((time.time() - t) * 1000)
        if status != 200:
            raise SystemExit(f"sync request answered {status}: {resp}")
    res["b"] = {"p50_ms": q(lat, 0.5), "p95_ms": q(lat, 0.95)}
    time.sleep(PUMP_LINGER_S + 3)  # as in (a): the reference runs once the worker is idle
    log("(b) reference, one at a time")
    res["b_ref"] = reference(args, args.sync, 1, [f"{site}/invoice.html"])


def measure_d(api, args, site, hooks, res):
    """(d) completion to webhook, a few in flight at a time."""
    log(f"(d) {args.hooks} webhooks")
    hook_url = f"http://127.0.0.1:{args.hook_port}/hook"
    ids = []
    for i in range(args.hooks):
        ids.append(api.submit([f"{site}/invoice.html?h={i}"], callback_url=hook_url))
        if len(ids) % 4 == 0:
            time.sleep(0.3)
    deadline = time.time() + 300
    while time.time() < deadline and len(hooks.arrivals) < len(ids):
        time.sleep(0.1)
    rows = psql(args.db, "SELECT batch_id, finished_at FROM jobs WHERE batch_id IN (%s)" % ",".join(f"'{i}'" for i in ids))
    finished = {r[0]: parse_ts(r[1]) for r in rows if len(r) == 2 and r[1]}
    gaps = [(hooks.arrivals[b] - finished[b]) * 1000 for b in ids if b in hooks.arrivals and b in finished]
    res["d"] = {"n": len(gaps), "p50_ms": q(gaps, 0.5), "p95_ms": q(gaps, 0.95)} if gaps else {"n": 0}
    res["d_batches"] = ids


def measure_e(api, args, site, mem, res):
    """(e) soak: memory over many pages."""
    log(f"(e) soak of {args.soak} pages")
    t_soak = time.time()
    left, n = args.soak, 0
    while left > 0:
        size = min(left, 500)
        batch = api.submit([f"{site}/{PAGES[(n + i) % len(PAGES)]}?soak={n + i}" for i in range(size)])
        api.wait_batch(batch)
        n += size
        left -= size
    t_end = time.time()
    samples = mem.between(t_soak, t_end)
    quarter = max(1, len(samples) // 4)
    first, last = samples[:quarter], samples[-quarter:]
    # The quarters' peaks are compared while one browser runs: a recycle (every 500 jobs)
    # runs two for some seconds, and a quarter that holds one peaks higher for it, whatever
    # the trend (+117 to +151 MiB in session 14's runs, where the last quarter held one).
    one = lambda part: [s for s in part if s[4] <= 1] or part
    res["e"] = {
        "pages": args.soak,
        "seconds": t_end - t_soak,
        "peak_pss_mib": max(s[1] for s in mem.samples) / 1024,
        "first_quarter_peak_mib": max(s[1] for s in one(first)) / 1024,
        "last_quarter_peak_mib": max(s[1] for s in one(last)) / 1024,
        "two_browsers_peak_mib": max((s[1] for s in samples if s[4] > 1), default=0) / 1024,
        "two_browsers_seconds": sum(1 for s in samples if s[4] > 1) * (t_end - t_soak) / max(1, len(samples)),
        "worker_rss_start_mib": first[0][2] / 1024,
        "worker_rss_end_mib": last[-1][2] / 1024,
        "max_processes": max(s[3] for s in mem.samples),
        # About every 2 s of the soak: seconds in, PSS MiB, processes, browsers.
        "series": [[round(t - t_soak, 1), round(pss / 1024), n, b] for t, pss, _, n, b in samples[::8]],
    }


def measure_c(args, site, mem, res):
    """(c) api alone: the worker stops, so submits only queue work."""
    log("(c) api throughput with wrk (worker stopped)")
    mem.stop = True
    os.kill(args.worker_pid, signal.SIGTERM)
    # Until the worker (and so its Chromium) is gone: run.sh reaps it only at the end, so a
    # stopped worker is a zombie here. Then a second for the machine to settle.
    t0 = time.time()
    while time.time() - t0 < 60:
        st = proc_stat(args.worker_pid)
        if st is None or st[1][0] == "Z":
            break
        time.sleep(0.1)
    log(f"(c) the worker stopped in {time.time() - t0:.1f} s")
    time.sleep(1)
    lua = f"/tmp/enconvert-bench-{os.getpid()}.lua"
    with open(lua, "w") as f:
        body = json.dumps({"url": f"{site}/invoice.html", "async_mode": True})
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
    for key, url, script in (
        ("c_submit", f"{args.api}/v1/convert/url-to-pdf", lua),
        ("c_status", f"{args.api}/v1/convert/batch/{res['d_batches'][0]}", None),
    ):
        busiest = Busiest()
        busiest.start()
        res[key] = wrk(args, url, script, args.wrk_seconds)
        busiest.stop = True
        busiest.join()
        res[key]["cpu_by_half_second"] = busiest.intervals
        if res[key]["p99_ms"] >= 50:
            log(f"(c) {key}: p99 {res[key]['p99_ms']:.1f} ms; CPU-s by half second and the busiest processes:")
            for x in busiest.intervals:
                log(f"    {x['t']:5.1f} s  busy {x['busy']:.2f}  " + ", ".join(f"{k} {v:.2f}" for k, v in x["top"]))
    os.unlink(lua)


def print_table(args, res, loads):
    print()
    print(f"enconvert bench: worker concurrency {args.concurrency}, {os.cpu_count()} cores; load average (1/5/15 min) at each step: {' | '.join(loads)}")
    print()
    print("| figure | enconvert | reference | ratio | goal |")
    print("|---|---|---|---|---|")
    if "a" in res:
        print_a(res)
    if "b" in res:
        b, br = res["b"], res["b_ref"]
        print(f"| (b) sync latency, {args.sync} sequential single-page requests | p50 {b['p50_ms']:.0f} ms, p95 {b['p95_ms']:.0f} ms | p50 {br['p50_ms']} ms, p95 {br['p95_ms']} ms | p50 {b['p50_ms'] - br['p50_ms']:+.0f} ms | p50 within +100 ms |")
    if "c_submit" in res:
        cs, cr = res["c_submit"], res["c_status"]
        print(f"| (c) api submits (async, one URL), wrk {args.wrk_connections} connections | {cs['rps']:.0f}/s, p50 {cs['p50_ms']:.1f} ms, p99 {cs['p99_ms']:.1f} ms, non-2xx {cs['non_2xx']} | | | >= 2000/s, p99 < 50 ms |")
        print(f"| (c) batch-status reads, wrk {args.wrk_connections} connections | {cr['rps']:.0f}/s, p50 {cr['p50_ms']:.1f} ms, p99 {cr['p99_ms']:.1f} ms, non-2xx {cr['non_2xx']} | | | >= 5000/s, p99 < 50 ms |")
    d = res.get("d")
    if d and d.get("n"):
        print(f"| (d) job finished to webhook received ({d['n']}) | p50 {d['p50_ms']:.0f} ms, p95 {d['p95_ms']:.0f} ms | | | p50 < 50 ms |")
    elif d is not None:
        print("| (d) job finished to webhook received | no webhook arrived | | | p50 < 50 ms |")
    if "e" in res:
        e = res["e"]
        grow = e["last_quarter_peak_mib"] - e["first_quarter_peak_mib"]
        print(f"| (e) worker + Chromium memory (PSS), peak over the run | {e['peak_pss_mib']:.0f} MiB (up to {e['max_processes']} processes) | | | flat |")
        print(f"| (e) soak of {e['pages']} pages ({e['seconds']:.0f} s): peak in first vs last quarter, one browser running; worker RSS start -> end | {e['first_quarter_peak_mib']:.0f} -> {e['last_quarter_peak_mib']:.0f} MiB ({grow:+.0f}); {e['worker_rss_start_mib']:.0f} -> {e['worker_rss_end_mib']:.0f} MiB; two browsers (a recycle) for {e['two_browsers_seconds']:.0f} s, peak {e['two_browsers_peak_mib']:.0f} MiB | | | flat |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


def print_a(res):
    a, ar = res["a"], res["a_ref"]
    n = len(a["rounds"])
    each = lambda side: ", ".join(f"{x['per_second']:.2f}" for x in side["rounds"])
    by_round = lambda side: ", ".join(f"{x['per_second'] / y['per_second']:.2f}x" for x, y in zip(a["rounds"], side["rounds"]))
    print(f"| (a) {a['pages']} mixed pages, one async batch, submit to completed; {n} rounds, turning which side goes first; reference launched with the worker's flags | {a['per_second']:.2f} pages/s ({a['seconds']:.1f} s in all; by round {each(a)}) | {ar['per_second']:.2f} pages/s ({ar['seconds']:.1f} s; {each(ar)}) | {a['per_second'] / ar['per_second']:.2f}x (by round {by_round(ar)}) | >= 1.0x |")
    ac, rc = res["a_cpu"], res["a_ref_cpu"]
    per = lambda c, k: c.get(k, 0.0) / a["pages"]
    if "worker" in ac:
        ac = dict(ac, chromium=ac["worker"] - ac.get("worker_process", 0.0))
        split = ", ".join(f"{k} {per(ac, k):.3f}" for k in ("chromium", "worker_process", "api", "notifier", "postgresql", "rabbitmq", "client"))
        ref_split = f"reference's processes {per(rc, 'reference'):.3f}; meanwhile the idle stack {sum(per(rc, k) for k in ('worker', 'api', 'notifier', 'postgresql', 'rabbitmq')):.3f}"
    else:
        split = "no split: run.sh could not create cpuacct cgroups"
        ref_split = ""
    print(f"| (a) CPU-s per page, machine-wide, mean of the rounds (chromium: every process under the worker) | {per(ac, 'machine'):.3f} ({split}) | {per(rc, 'machine'):.3f} ({ref_split}) | {per(ac, 'machine') / per(rc, 'machine'):.2f}x | |")
    if "a_base" in res:
        ab, bc = res["a_base"], res["a_base_cpu"]
        print(
            f"| (a) the same batch against the reference launched as the issue's baseline (../shared/bench/baseline: the closed network's switches, Playwright's own for the rest) | {a['per_second']:.2f} pages/s; CPU-s a page {per(ac, 'machine'):.3f} | {ab['per_second']:.2f} pages/s ({ab['seconds']:.1f} s; {each(ab)}); CPU-s a page {per(bc, 'machine'):.3f} | {a['per_second'] / ab['per_second']:.2f}x (by round {by_round(ab)}) | >= 1.0x |"
        )


if __name__ == "__main__":
    main()
