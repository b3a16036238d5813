#!/usr/bin/env bash
# Drops the databases and RabbitMQ vhosts that end-to-end tests left behind (a test that fails
# stops before its own clean-up). Every test makes its own `enc_t_*` pair, so this removes only
# test data; don't run it while tests are running. CI runs it before the suite.
set -euo pipefail
PGURL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
RABBIT_API=${RABBIT_API:-http://127.0.0.1:15672/api}

dbs=$(psql "$PGURL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'enc\_t\_%'")
for db in $dbs; do
  psql "$PGURL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
done

vhosts=$(curl -sf -u guest:guest "$RABBIT_API/vhosts" \
  | python3 -c 'import json,sys; print("\n".join(v["name"] for v in json.load(sys.stdin) if v["name"].startswith("enc_t_")))')
for vh in $vhosts; do
  curl -sf -u guest:guest -X DELETE "$RABBIT_API/vhosts/$vh" >/dev/null
done
echo "removed $(echo "$dbs" | grep -c . || true) test databases and $(echo "$vhosts" | grep -c . || true) test vhosts"
