#!/usr/bin/env bash
# Installs what the service and its tests need and starts the local services that are down.
# Idempotent; used by `make run`, `make test` and CI.
set -euo pipefail

need_apt=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
# The TLS test serves a self-signed certificate with openssl s_server.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
fc-list 2>/dev/null | grep -qi dejavu || need_apt+=(fonts-dejavu-core)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# An S3-compatible server for the bucket-storage test (moto's server mode, from PyPI).
if ! command -v moto_server >/dev/null 2>&1; then
  echo "installing moto[server]"
  python3 -m pip install -q "moto[server]" >/dev/null
fi

# The end-to-end suite checks webhook signatures with the reference Standard Webhooks library
# (it falls back to a few lines of Python's hmac when the package cannot be installed).
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import standardwebhooks" 2>/dev/null; then
  python3 -m pip install -q standardwebhooks 2>/dev/null \
    || python3 -m pip install -q --break-system-packages standardwebhooks 2>/dev/null \
    || echo "note: could not install the Python package standardwebhooks; signatures are checked with Python's hmac"
fi

# PostgreSQL
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }

# RabbitMQ
port_open() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
if ! port_open 5672; then
  echo "starting RabbitMQ"
  command -v rabbitmq-server >/dev/null 2>&1 && rabbitmq-server -detached || true
  for _ in $(seq 1 60); do port_open 5672 && break; sleep 1; done
fi
port_open 5672 || { echo "RabbitMQ is not reachable on 127.0.0.1:5672" >&2; exit 1; }
# The management plugin: the UI operators watch, and the API the tests create vhosts with.
if ! port_open 15672; then
  echo "enabling the RabbitMQ management plugin"
  rabbitmq-plugins enable rabbitmq_management >/dev/null
  for _ in $(seq 1 60); do port_open 15672 && break; sleep 1; done
fi
port_open 15672 || { echo "the RabbitMQ management API is not reachable on 127.0.0.1:15672" >&2; exit 1; }
exit 0
