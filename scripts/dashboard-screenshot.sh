#!/usr/bin/env bash
# Makes docs/img/dashboard.png, the README's picture of the dashboard, with the project's
# own tooling: the e2e harness starts api, worker and notifier against the local PostgreSQL
# and RabbitMQ, a four-URL batch (one failing) with a webhook runs to the end, and headless
# Chromium (the worker's launch flags) signs in and captures the batch page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run -p enconvert-e2e --test dashboard --run-ignored ignored-only screenshot_for_the_readme
else
  cargo test -p enconvert-e2e --test dashboard -- --ignored --exact screenshot_for_the_readme
fi
ls -l docs/img/dashboard.png
