# Enconvert: `make run` runs the whole service, `make test` runs every test.
SHELL := /bin/bash
# One build directory outside the clone lets CI reuse a session's build; any clone works without it.
export CARGO_TARGET_DIR ?= $(shell if mkdir -p /var/cache/enconvert-target 2>/dev/null && test -w /var/cache/enconvert-target; then echo /var/cache/enconvert-target; else echo $(CURDIR)/target; fi)
BIN := $(CARGO_TARGET_DIR)/debug

.PHONY: run test test-faults check fmt clippy purity deps build validate-deploy clean-test-data bench

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
		cargo nextest run --workspace --exclude enconvert-faults --no-fail-fast --test-threads 4; \
	else \
		cargo test --workspace --exclude enconvert-faults --no-fail-fast -- --test-threads 4; \
	fi

## The fault-injection suite (docs/reliability.md): each test starts its own PostgreSQL
## cluster and RabbitMQ node and the real binaries, injects a fault and counts a ledger.
## FAULTS_THREADS tests run at once (each runs its own servers and Chromium).
FAULTS_THREADS ?= 2
test-faults: deps
	cargo build --bins -p enconvert-api -p enconvert-worker -p enconvert-notifier
	cargo build -p enconvert-faults --tests
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run -p enconvert-faults --no-fail-fast --test-threads $(FAULTS_THREADS) --success-output immediate; \
	else \
		cargo test -p enconvert-faults --no-fail-fast -- --test-threads $(FAULTS_THREADS) --nocapture; \
	fi

## Drop the databases and vhosts that failed tests left behind (not while tests run).
clean-test-data:
	@scripts/clean-test-data.sh

## Throughput, latency and memory figures on the project's own page corpus, next to a
## reference renderer (not part of `make test`; see docs/performance.md).
bench: deps
	@bench/run.sh

## Formatting, lints, the purity of the domain crate and the CLI's independence.
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
	@if cargo tree -p enconvert-cli -e normal --prefix none | grep '^enconvert-' | grep -v '^enconvert-cli '; then \
		echo "enconvert-cli depends on a workspace crate; it must use the HTTP API only"; exit 1; fi; \
	echo "enconvert-cli talks to the HTTP API only"

validate-deploy:
	python3 deploy/validate.py
