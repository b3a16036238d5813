# Enconvert: `make run` runs the whole service, `make test` runs every test.
SHELL := /bin/bash
# One build directory outside the clone lets CI reuse a session's build; any clone works without it.
export CARGO_TARGET_DIR ?= $(shell if mkdir -p /var/cache/enconvert-target 2>/dev/null && test -w /var/cache/enconvert-target; then echo /var/cache/enconvert-target; else echo $(CURDIR)/target; fi)
BIN := $(CARGO_TARGET_DIR)/debug

.PHONY: run test check fmt clippy purity deps build validate-deploy bench

## Install what is missing (Chromium, poppler), start PostgreSQL and RabbitMQ if down.
deps:
	@scripts/ensure-deps.sh

build:
	cargo build --workspace --bins

## Build, migrate, ensure the development project, run api + worker + notifier until Ctrl-C.
run: deps build
	@scripts/run.sh

## Every test: unit tests and the end-to-end suite against real PostgreSQL, RabbitMQ,
## Chromium, an SMTP server and an HTTP receiver.
test: deps
	cargo build --workspace --all-targets
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast --test-threads 4; \
	else \
		cargo test --workspace --no-fail-fast -- --test-threads 4; \
	fi

## Throughput, latency and memory figures on the project's own page corpus, next to a
## reference renderer (not part of `make test`; see docs/performance.md).
bench: deps
	@bench/run.sh

## Formatting, lints, and the purity of the domain crate.
check: fmt clippy purity validate-deploy

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

purity:
	@for dep in diesel lapin actix-web headless_chrome tokio reqwest lettre; do \
		if cargo tree -p enconvert-domain -e normal -i $$dep >/dev/null 2>&1; then \
			echo "enconvert-domain depends on $$dep"; exit 1; fi; \
	done; echo "enconvert-domain has no I/O dependency"

validate-deploy:
	python3 deploy/validate.py
