#!/usr/bin/env bash
# `make bench`: builds the service, starts api + worker + notifier (as separate processes)
# against a private database and RabbitMQ vhost, serves bench/site on loopback, and runs
# bench/bench.py, which prints one table (see docs/performance.md).
#
#   BENCH_CONCURRENCY  worker concurrency (default: the worker's default)
#   BENCH_QUICK=1      a quicker run: a 200-page soak, 20 sync requests, 5 s wrk runs
#   BENCH_SOAK         pages in the memory soak (default 1000)
#   BENCH_PROFILE      cargo profile of the binaries (default release)
#   BENCH_BATCH        pages in the (a) batch (default 200)
#   BENCH_A_ROUNDS     rounds of (a), each measuring every side, turning which goes first
#                      (default 2; 1 with BENCH_QUICK=1)
#   BENCH_A_BASELINE=0 (a) without its third side, the reference launched as the issue's
#                      baseline (../shared/bench/baseline) launches Chromium (default 1)
#   BENCH_JSON         also write the raw figures to this file
#   BENCH_LOGS         keep the api's, worker's and notifier's logs in this directory
#   BENCH_ONLY         the figures to measure, as letters (BENCH_ONLY=a: the batch and its
#                      reference only); default abcde
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

scripts/ensure-deps.sh
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
if [ ! -d bench/reference/node_modules/playwright-core ]; then
  echo "installing the reference renderer (playwright-core)"
  (cd bench/reference && npm install --no-audit --no-fund --silent)
fi

profile="${BENCH_PROFILE:-release}"
target="${CARGO_TARGET_DIR:-$root/target}"
if [ "$profile" = release ]; then
  cargo build --release -p enconvert-api -p enconvert-worker -p enconvert-notifier -p enconvert-admin
  bin="$target/release"
else
  cargo build -p enconvert-api -p enconvert-worker -p enconvert-notifier -p enconvert-admin
  bin="$target/debug"
fi

concurrency="${BENCH_CONCURRENCY:-4}"
if [ "${BENCH_QUICK:-}" = 1 ]; then
  soak="${BENCH_SOAK:-200}"; sync=20; wrk_secs=5; a_rounds="${BENCH_A_ROUNDS:-1}"
else
  soak="${BENCH_SOAK:-1000}"; sync=50; wrk_secs=10; a_rounds="${BENCH_A_ROUNDS:-2}"
fi

name="enconvert_bench"
vhost="enconvert-bench"
api_port=18080; site_port=18099; hook_port=18098
work="$(mktemp -d /tmp/enconvert-bench.XXXXXX)"
# CPU accounting for (a): each process tree (the worker with its Chromium, the api, the
# notifier, the reference, the bench client) runs in a cpuacct cgroup of its own, which counts
# every descendant, short-lived renderers included. Where cgroup v1's cpuacct is not writable
# (not root, cgroup v2 only), the table says so and leaves the split out.
cg=""
if [ -w /sys/fs/cgroup/cpuacct ] && mkdir "/sys/fs/cgroup/cpuacct/enconvert-bench-$$" 2>/dev/null; then
  cg="/sys/fs/cgroup/cpuacct/enconvert-bench-$$"
fi
# in_group NAME CMD...: becomes CMD, in the cgroup NAME (or as it is, without accounting).
# It execs, so call it in a subshell or in the background: `$!` is then CMD's own pid.
in_group() {
  local group="$1"; shift
  if [ -n "$cg" ]; then
    mkdir -p "$cg/$group"
    exec sh -c 'echo $$ > "$0/tasks" && exec "$@"' "$cg/$group" "$@"
  else
    exec "$@"
  fi
}
pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$cg" ]; then
    cat "$cg"/*/tasks 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    sleep 0.2
    for d in "$cg"/*/; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    rmdir "$cg" 2>/dev/null || true
  fi
  if [ -n "${BENCH_LOGS:-}" ]; then mkdir -p "$BENCH_LOGS" && cp "$work"/*.log "$BENCH_LOGS"/ 2>/dev/null || true; fi
  psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  curl -fsS -u guest:guest -X DELETE "http://127.0.0.1:15672/api/vhosts/$vhost" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup INT TERM EXIT

psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
curl -fsS -u guest:guest -X DELETE "http://127.0.0.1:15672/api/vhosts/$vhost" >/dev/null 2>&1 || true
curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' \
  -d '{"default_queue_type":"quorum"}' "http://127.0.0.1:15672/api/vhosts/$vhost" >/dev/null
curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' \
  -d '{"configure":".*","write":".*","read":".*"}' "http://127.0.0.1:15672/api/permissions/$vhost/guest" >/dev/null

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$name"
export AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$vhost"
export ENCONVERT_API_ADDR="127.0.0.1:$api_port"
export ENCONVERT_ALLOW_PRIVATE_TARGETS="127.0.0.1"
export ENCONVERT_DEV_API_KEY="sk_live_bench$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ENCONVERT_SIGNING_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ENCONVERT_STORAGE_DIR="$work/files" ENCONVERT_MAIL_DIR="$work/mail"
export ENCONVERT_WORKER_CONCURRENCY="$concurrency"
export RUST_LOG="${RUST_LOG:-warn}"
# As deployed (deploy/ sets neither): with them, every error (an expected one included) would
# capture and symbolize a backtrace, which costs CPU and ~30 MB of symbol cache.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

"$bin/enconvert-admin" ensure-dev-project >/dev/null
# A plan without a practical rate limit, so (c) measures the api and not the limiter's 429s;
# no owner emails, so the notifier only sends what is measured.
psql -q "$DATABASE_URL" >/dev/null <<SQL
INSERT INTO plans VALUES ('bench', true, true, true, true, true, true, 'full', 1000, 100000000, 100000000, 24);
UPDATE projects SET plan = 'bench', default_email_enabled = false;
SQL

python3 -m http.server "$site_port" --bind 127.0.0.1 --directory bench/site >/dev/null 2>&1 &
pids+=($!)
# The worker runs with the allocator settings its image sets (Dockerfile, docs/performance.md (e)).
malloc_env=(MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=0 MALLOC_MMAP_THRESHOLD_=65536)
for p in api worker notifier; do
  envs=(); [ "$p" = worker ] && envs=("${malloc_env[@]}")
  in_group "$p" env "${envs[@]}" "$bin/enconvert-$p" >"$work/$p.log" 2>&1 &
  pids+=($!)
  [ "$p" = worker ] && worker_pid=$!
done
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$api_port/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done

( in_group client python3 bench/bench.py \
  ${cg:+--cgroups "$cg"} \
  --api "http://127.0.0.1:$api_port" --key "$ENCONVERT_DEV_API_KEY" \
  --site "http://127.0.0.1:$site_port" --db "$DATABASE_URL" \
  --worker-pid "$worker_pid" --hook-port "$hook_port" \
  --concurrency "$concurrency" --ref-dir bench/reference \
  --batch "${BENCH_BATCH:-200}" --a-rounds "$a_rounds" --a-baseline "${BENCH_A_BASELINE:-1}" --sync "$sync" --soak "$soak" --wrk-seconds "$wrk_secs" \
  ${BENCH_JSON:+--json "$BENCH_JSON"} ${BENCH_ONLY:+--only "$BENCH_ONLY"} \
) || { echo "bench failed; the worker's log ends:"; tail -20 "$work/worker.log"; exit 1; }
