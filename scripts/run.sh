#!/usr/bin/env bash
# `make run`: migrate, ensure the development project, serve the demo page, then run the api,
# the worker and the notifier in the foreground with labelled logs until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/debug"

# .env holds local settings; create the development key once and keep it there.
touch .env
set -a; source .env; set +a
if [ -z "${ENCONVERT_DEV_API_KEY:-}" ]; then
  ENCONVERT_DEV_API_KEY="sk_live_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  echo "ENCONVERT_DEV_API_KEY=$ENCONVERT_DEV_API_KEY" >> .env
  echo "created a development API key in .env"
fi
if [ -z "${ENCONVERT_SIGNING_SECRET:-}" ]; then
  ENCONVERT_SIGNING_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  echo "ENCONVERT_SIGNING_SECRET=$ENCONVERT_SIGNING_SECRET" >> .env
fi
# Development only: the demo page is served on loopback, so loopback is allowed here.
: "${ENCONVERT_ALLOW_PRIVATE_TARGETS:=127.0.0.1}"
: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/enconvert}"
export ENCONVERT_DEV_API_KEY ENCONVERT_SIGNING_SECRET ENCONVERT_ALLOW_PRIVATE_TARGETS DATABASE_URL

db_name="${DATABASE_URL##*/}"; db_name="${db_name%%\?*}"
admin_url="${DATABASE_URL%/*}/postgres"
if ! psql "$admin_url" -tAc "SELECT 1 FROM pg_database WHERE datname='$db_name'" | grep -q 1; then
  psql "$admin_url" -qc "CREATE DATABASE \"$db_name\"" && echo "created database $db_name"
fi

"$BIN/enconvert-admin" ensure-dev-project

pids=()
cleanup() {
  trap - INT TERM EXIT
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

python3 -m http.server 8099 --bind 127.0.0.1 --directory bench/site >/dev/null 2>&1 &
pids+=($!)
# The worker runs with the allocator settings its image sets (Dockerfile, docs/performance.md (e)).
malloc_env=(MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=0 MALLOC_MMAP_THRESHOLD_=65536)
for p in api worker notifier; do
  envs=(); [ "$p" = worker ] && envs=("${malloc_env[@]}")
  ( env "${envs[@]}" "$BIN/enconvert-$p" 2>&1 | sed -u "s/^/[$p] /" ) &
  pids+=($!)
done

addr="${ENCONVERT_API_ADDR:-127.0.0.1:8080}"
for _ in $(seq 1 60); do curl -fsS "http://$addr/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
cat <<MSG

Enconvert is running on http://$addr (Ctrl-C stops everything). Convert the demo page:

  curl -s -X POST http://$addr/v1/convert/url-to-pdf \\
    -H "X-API-Key: $ENCONVERT_DEV_API_KEY" -H "Content-Type: application/json" \\
    -d '{"url": "http://127.0.0.1:8099/invoice.html", "async_mode": true}'

then poll the batch it names:

  curl -s http://$addr/v1/convert/batch/BATCH_ID -H "X-API-Key: $ENCONVERT_DEV_API_KEY"

or with the command-line client (docs/cli.md), which waits and writes the file:

  ENCONVERT_API_KEY=$ENCONVERT_DEV_API_KEY $BIN/enconvert pdf http://127.0.0.1:8099/invoice.html -o invoice.pdf

or convert a whole site, one PDF per page in one ZIP (see docs/api.md):

  curl -s -X POST http://$addr/v1/convert/website-to-pdf \\
    -H "X-API-Key: $ENCONVERT_DEV_API_KEY" -H "Content-Type: application/json" \\
    -d '{"url": "http://127.0.0.1:8099/", "crawl_mode": "full"}'

Follow it on the dashboard, http://$addr/dashboard (sign in with ENCONVERT_DEV_API_KEY
from .env). Emails are written to ${ENCONVERT_MAIL_DIR:-./data/mail} (set SMTP_URL to send them).
Health and metrics: http://${ENCONVERT_API_OPS_ADDR:-127.0.0.1:9181}/metrics (api),
http://${ENCONVERT_WORKER_OPS_ADDR:-127.0.0.1:9182}/readyz (worker),
http://${ENCONVERT_NOTIFIER_OPS_ADDR:-127.0.0.1:9183}/readyz (notifier).

MSG
# Stop everything as soon as any process exits.
wait -n
echo "a process exited; stopping the others" >&2
exit 1
