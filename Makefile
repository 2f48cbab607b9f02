# pottery-rs: the README's commands.
#   make demo   start a throwaway redis-server, run `cargo run --example tour` against it, stop it
#   make test   formatting, clippy, every test (unit, integration, interop, doc) and a quick bench
#   make bench  pottery-rs vs raw redis-rs (vs Python pottery) on servers of its own
# Each installs what it needs: redis-server/redis-tools from Debian packages when missing, and
# a Python venv with pottery 3.0.1 for the interop tests and the benchmark.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
POTTERY_PY_VERSION := 3.0.1
export POTTERY_PYTHON := $(PY)
export CARGO_TERM_COLOR ?= never

.PHONY: demo test bench deps redis venv lint

deps: redis venv

redis:
	@if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then \
	  echo "== installing redis-server and redis-tools (Debian packages)"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq redis-server redis-tools >/dev/null; \
	fi
	@redis-server --version

venv: $(VENV)/.pottery-$(POTTERY_PY_VERSION)

$(VENV)/.pottery-$(POTTERY_PY_VERSION):
	@echo "== creating $(VENV) with pottery==$(POTTERY_PY_VERSION)"
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check 'pottery==$(POTTERY_PY_VERSION)'
	touch $@

demo: redis
	@dir=$$(mktemp -d); \
	port=$$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	redis-server --port $$port --bind 127.0.0.1 --save '' --appendonly no --dir $$dir \
	  --logfile $$dir/redis.log --daemonize yes --pidfile $$dir/redis.pid; \
	trap 'kill $$(cat $$dir/redis.pid) 2>/dev/null || true; rm -rf $$dir' EXIT; \
	for i in $$(seq 200); do redis-cli -p $$port ping >/dev/null 2>&1 && break; sleep 0.05; done; \
	echo "== throwaway redis-server on port $$port"; \
	REDIS_URL=redis://127.0.0.1:$$port/0 cargo run -q --example tour

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

test: deps lint
	mkdir -p target
	cargo test --workspace --all-features 2>&1 | tee target/test.log
	QUICK=1 $(MAKE) --no-print-directory bench
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "all tests: %d passed, %d failed\n", p, f }' target/test.log

bench: deps
	cargo bench -q -p pottery-tests --bench compare
