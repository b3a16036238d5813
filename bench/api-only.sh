#!/usr/bin/env bash
# The api alone (its outbox relay included, no worker), as in figure (c) of `make bench`, with
# the CPU each process used during the run and, when PostgreSQL preloads
# pg_stat_statements, what each statement cost. docs/performance.md quotes it.
#
#   bench/api-only.sh [seconds]     (release binaries under $CARGO_TARGET_DIR or target/)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
cargo build --release -q -p enconvert-api -p enconvert-admin
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
name=enconvert_apibench; vhost=enconvert-apibench; port=18081
work="$(mktemp -d /tmp/enconvert-apibench.XXXXXX)"
api=""
cleanup() {
  [ -n "$api" ] && kill "$api" 2>/dev/null && wait "$api" 2>/dev/null
  psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  curl -fsS -u guest:guest -X DELETE "http://127.0.0.1:15672/api/vhosts/$vhost" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' -d '{"default_queue_type":"quorum"}' "http://127.0.0.1:15672/api/vhosts/$vhost" >/dev/null
curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' -d '{"configure":".*","write":".*","read":".*"}' "http://127.0.0.1:15672/api/permissions/$vhost/guest" >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$name" AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$vhost"
export ENCONVERT_API_ADDR="127.0.0.1:$port" ENCONVERT_ALLOW_PRIVATE_TARGETS="127.0.0.1"
export ENCONVERT_DEV_API_KEY="sk_live_bench$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ENCONVERT_SIGNING_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ENCONVERT_STORAGE_DIR="$work/files" ENCONVERT_MAIL_DIR="$work/mail" RUST_LOG=warn
unset RUST_BACKTRACE RUST_LIB_BACKTRACE
"$bin/enconvert-admin" ensure-dev-project >/dev/null
# As in bench/run.sh: a plan without a practical rate limit.
psql -q "$DATABASE_URL" >/dev/null <<SQL
INSERT INTO plans VALUES ('bench', true, true, true, true, true, true, 'full', 1000, 100000000, 100000000, 24);
UPDATE projects SET plan = 'bench', default_email_enabled = false;
SQL
"$bin/enconvert-api" >"$work/api.log" 2>&1 &
api=$!
for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
cat >"$work/submit.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"url": "http://127.0.0.1:18099/invoice.html", "async_mode": true}'
wrk.headers["Content-Type"] = "application/json"
LUA
stats=false
psql -q "$DATABASE_URL" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset();" >/dev/null 2>&1 && stats=true
python3 bench/cpuall.py wrk -t 2 -c 32 -d "${secs}s" --latency -H "X-API-Key: $ENCONVERT_DEV_API_KEY" \
  -s "$work/submit.lua" "http://127.0.0.1:$port/v1/convert/url-to-pdf"
if $stats; then
  psql "$DATABASE_URL" -c "SELECT calls, round(total_exec_time::numeric) AS exec_ms, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 100) AS query FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 8"
else
  echo "(statement figures need shared_preload_libraries = 'pg_stat_statements')"
fi
