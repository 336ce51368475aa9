# Shoal — the verbs. `make help` lists them.
#
# Every install step the tests need lives here, so a fresh clone (CI runs
# `bash .ci/run`, which is `make test`) needs nothing installed by hand beyond
# the Rust toolchain, python3 and apt.

SHELL        := bash
.SHELLFLAGS  := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO        ?= cargo
PYTHON       ?= python3
VENV         ?= .venv
DATA_DIR     ?= ./data
SHOAL_BIN    ?= target/release/shoal
# Per-test timeout (seconds) for the Python suite; tests may set a lower one.
PYTEST_TIMEOUT ?= 300
# Extra arguments for pytest, e.g. `make test-python PYTEST_ARGS='-k admin'`.
PYTEST_ARGS  ?=
# Extra arguments for `cargo test`, e.g. RUST_TEST_ARGS='--exclude shoal-bench'.
RUST_TEST_ARGS ?=
BENCH_SCRIPT ?= tests/bench/run.sh
CLUSTER_DIR  ?= ./.cluster
CLUSTER_SPLIT_DIR ?= ./.cluster-split
# shoal-chaos: run length in seconds and where the report goes.
DURATION     ?= 300
CHAOS_OUT    ?= ./chaos-report
CHAOS_ARGS   ?=
# The secured compose cluster (deploy/docker-compose.secure.yml): its chaos run's length, where
# deploy/secure/gen-certs.sh writes (as compose.sh reads it), and its container names.
CHAOS_SECURE_DURATION ?= 60
SECURE_CERTS := $(or $(SHOAL_CERTS_DIR),deploy/secure/certs)
SECURE_PREFIX := $(or $(SHOAL_COMPOSE_PREFIX),shoal)-secure
# Dependency checkers `make check` installs from crates.io when missing (pinned, --locked).
CARGO_MACHETE_VERSION ?= 0.9.2
CARGO_DENY_VERSION    ?= 0.20.2
CARGO_FUZZ_VERSION ?= 0.13.2
# How those tools are compiled: CI installs them on every fresh machine, and at opt-level 1 with
# parallel codegen cargo-deny builds in half the time (measured on 2 cores: 89 s against about
# 3 min) while its check still takes under a second (a debug build takes 25 s to check).
TOOL_PROFILE := CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_DEBUG=false
FUZZ_TARGETS := kafka_request record_batch metadata_record segment_load
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
# The RustSec advisory database cargo deny reads (deny.toml's db-path; a clone of
# github.com/rustsec/advisory-db in a subdirectory). CI cannot reach GitHub, so advisories are
# checked only when a clone is already there.
ADVISORY_DB  ?= $(or $(CARGO_HOME),$(HOME)/.cargo)/advisory-dbs

# apt needs root; use sudo when we are not root and sudo exists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && echo sudo; })

VENV_STAMP := $(VENV)/.requirements.stamp

.PHONY: help docs run build build-tools build-all compat compat-tools test test-deps check check-deps check-tools test-rust test-python bench clean-data cluster cluster-split cluster-stop cluster-status image compose-up compose-down compose-clean compose-split-up compose-split-down compose-split-clean compose-secure-up compose-secure-down compose-secure-clean chaos chaos-local chaos-secure fuzz fuzz-tools test-fuzz fuzz-seeds

help: ## list the verbs
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN{FS=":.*## "} {printf "  make %-20s %s\n", $$1, $$2}'

build: ## release build of the shoal binary
	$(CARGO) build --release --bin shoal

build-tools: ## release build of the tools the image and tests ship: shoal-chaos, shoalctl
	$(CARGO) build --release --bin shoal-chaos --bin shoalctl

# One cargo run for the three: the tools' crates compile on the core the long sequential tail
# of shoal's build (shoal-broker, shoal-server) leaves idle.
build-all: ## release build of shoal, shoal-chaos and shoalctl in one cargo run
	$(CARGO) build --release --bin shoal --bin shoal-chaos --bin shoalctl

# No overrides: the binary's defaults are a complete single node (groups included; see
# docs/configuration.md, "A single node serves everything out of the box"). shoalctl is built
# too, so the README quickstart works as written.
run: ## build shoal and shoalctl (release), then run one node (controller+broker) with data in ./data
	$(CARGO) build --release --bin shoal --bin shoalctl
	exec $(SHOAL_BIN) --data-dir $(DATA_DIR)

test: test-deps check test-rust test-python ## everything CI runs: deps, lint, Rust tests (the fuzz corpora replayed), client tests

test-deps: $(VENV_STAMP) ## install kcat and OpenSSL headers (apt) and the Python test venv, only when missing/changed
	@if command -v kcat >/dev/null 2>&1 && pkg-config --exists openssl 2>/dev/null; then \
	  echo "kcat: $$(command -v kcat); OpenSSL headers: $$(pkg-config --modversion openssl)"; \
	else \
	  echo "kcat or OpenSSL headers (librdkafka's test runner) missing: installing the Debian packages"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kcat libssl-dev pkg-config; \
	fi

$(VENV_STAMP): tests/requirements.txt
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	@touch $@

docs: ## regenerate the generated tables of docs/configuration.md from the config schema
	SHOAL_UPDATE_DOCS=1 $(CARGO) test -q -p shoal-config --lib docs::

check: ## rustfmt, clippy (warnings are errors), then check-deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@$(MAKE) --no-print-directory check-deps

check-deps: check-tools ## unused dependencies (cargo machete); cargo deny: licenses, bans, sources, advisories if a local DB exists
	$(CARGO) machete
	$(CARGO) fetch --locked  # cargo deny --offline reads every locked crate, other platforms' too
	$(CARGO) deny --offline check --hide-inclusion-graph licenses bans sources
	@if ls -d '$(ADVISORY_DB)'/*/crates >/dev/null 2>&1; then \
	  echo "$(CARGO) deny --offline check --hide-inclusion-graph advisories"; \
	  $(CARGO) deny --offline check --hide-inclusion-graph advisories; \
	else \
	  echo "cargo deny: advisories SKIPPED - no advisory database in $(ADVISORY_DB) (it is fetched over the network, which this machine cannot reach; copy one there to enable the check)"; \
	fi

check-tools: ## install cargo-machete and cargo-deny (pinned versions) when missing
	@$(CARGO) machete --version 2>/dev/null | grep -qF '$(CARGO_MACHETE_VERSION)' || \
	  $(TOOL_PROFILE) $(CARGO) install --locked cargo-machete --version $(CARGO_MACHETE_VERSION)
	@$(CARGO) deny --version 2>/dev/null | grep -qF '$(CARGO_DENY_VERSION)' || \
	  $(TOOL_PROFILE) $(CARGO) install --locked cargo-deny --version $(CARGO_DENY_VERSION)

test-rust: ## cargo test for the whole workspace
	$(CARGO) test --workspace $(RUST_TEST_ARGS)

test-python: build-all compat-tools $(VENV_STAMP) ## real-client tests (kcat, confluent-kafka, kafka-python, librdkafka's suite's stable subset) against the real binary
	SHOAL_BIN=$(abspath $(SHOAL_BIN)) $(VENV)/bin/pytest tests/python -v --durations=30 \
	  --timeout=$(PYTEST_TIMEOUT) -p no:cacheprovider $(PYTEST_ARGS)

compat-tools: ## build librdkafka's regression test runner from the sources rdkafka-sys vendors (target/compat)
	bash tests/compat/build.sh

compat: build-all compat-tools $(VENV_STAMP) ## every librdkafka broker test against three Shoal nodes, one process each; a table and the totals (docs/compatibility.md)
	rm -f target/compat/results.tsv
	-COMPAT_SUITE=full COMPAT_BROKERS=$(or $(COMPAT_BROKERS),3) SHOAL_BIN=$(abspath $(SHOAL_BIN)) $(VENV)/bin/pytest tests/python/test_librdkafka_suite.py \
	  -q -p no:cacheprovider --timeout=600 $(PYTEST_ARGS)
	$(VENV)/bin/python tests/compat/report.py target/compat/results.tsv

compat-security: build-all compat-tools $(VENV_STAMP) ## librdkafka's suite in its SASL/TLS scenarios (sasl_test.py's): every broker test over SASL SCRAM, SSL and SASL_SSL PLAIN, 0001 in the others; COMPAT_TESTS=N,M narrows
	rm -f target/compat/results-security.tsv
	-COMPAT_SECURITY=full SHOAL_BIN=$(abspath $(SHOAL_BIN)) $(VENV)/bin/pytest tests/python/test_librdkafka_security.py \
	  -q -p no:cacheprovider --timeout=600 $(PYTEST_ARGS)
	$(VENV)/bin/python tests/compat/report.py target/compat/results-security.tsv

image: build-all ## the container image shoal:dev, FROM scratch (binaries + the libraries ldd lists)
	bash deploy/image/build.sh shoal:dev

compose-up: image ## three combined nodes in containers (host ports 19092-19094, admin 19644-19646); waits until healthy
	bash deploy/compose.sh up combined

compose-down: ## stop the compose cluster (volumes, i.e. data, are kept)
	bash deploy/compose.sh down combined

compose-clean: ## stop the compose cluster and delete its volumes
	bash deploy/compose.sh clean combined

compose-split-up: image ## 3 controllers + 3 brokers in containers (Kafka 19092-19094); waits until healthy
	bash deploy/compose.sh up split

compose-split-down: ## stop the split compose cluster (data kept)
	bash deploy/compose.sh down split

compose-split-clean: ## stop the split compose cluster and delete its volumes
	bash deploy/compose.sh clean split

compose-secure-up: image ## the compose cluster over SASL_SSL (SCRAM, ACLs, admin super-user), certs from deploy/secure/gen-certs.sh; waits until healthy
	bash deploy/secure/gen-certs.sh $(SECURE_CERTS)
	bash deploy/compose.sh up secure

compose-secure-down: ## stop the secured compose cluster (data kept)
	bash deploy/compose.sh down secure

compose-secure-clean: ## stop the secured compose cluster and delete its volumes (certificates are kept)
	bash deploy/compose.sh clean secure

chaos: compose-up ## shoal-chaos against the compose cluster: idempotent + exactly-once workloads, all faults, DURATION seconds (report in CHAOS_OUT)
	target/release/shoal-chaos --target compose --duration-s $(DURATION) --workload all \
	  --faults kill,pause,partition,rolling,replace,reassign --out $(CHAOS_OUT) $(CHAOS_ARGS)

chaos-secure: compose-secure-up ## shoal-chaos over SASL_SSL as admin against compose-secure, all faults, CHAOS_SECURE_DURATION (60) seconds
	target/release/shoal-chaos --target compose --duration-s $(CHAOS_SECURE_DURATION) \
	  --containers $(SECURE_PREFIX)-node1,$(SECURE_PREFIX)-node2,$(SECURE_PREFIX)-node3 \
	  --network $(SECURE_PREFIX)-net --command-config $(SECURE_CERTS)/admin.properties \
	  --faults kill,pause,partition,rolling --out $(CHAOS_OUT) $(CHAOS_ARGS)

chaos-local: build-tools cluster ## shoal-chaos against `make cluster`: idempotent + exactly-once workloads, kill, pause, rolling restart, replaced disk, partition moves, DURATION seconds
	target/release/shoal-chaos --target local --cluster-dir $(CLUSTER_DIR) --duration-s $(DURATION) \
	  --workload all --faults kill,pause,rolling,replace,reassign --out $(CHAOS_OUT) $(CHAOS_ARGS)

fuzz-tools: ## install cargo-fuzz (pinned) when missing; the targets build with the nightly toolchain
	@$(CARGO) fuzz --version 2>/dev/null | grep -qF '$(CARGO_FUZZ_VERSION)' || \
	  $(TOOL_PROFILE) $(CARGO) install --locked cargo-fuzz --version $(CARGO_FUZZ_VERSION)

fuzz: fuzz-tools ## every fuzz target for FUZZ_SECONDS (default 60) from the seed corpus; new inputs in fuzz/corpus-run, crashes in fuzz/artifacts
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus-run/$$t fuzz/corpus/$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  (cd fuzz && cargo +nightly fuzz run -s none $$t corpus-run/$$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) || exit 1; \
	done

test-fuzz: fuzz-tools ## a short fuzz run (not in make test; its corpus replay is): every target for FUZZ_SMOKE_SECONDS from the seed corpus
	@if ! rustup run nightly rustc --version >/dev/null 2>&1; then \
	  echo "test-fuzz SKIPPED: no nightly toolchain (cargo fuzz needs it; rustup toolchain install nightly)"; \
	else \
	  $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS); \
	fi

fuzz-seeds: build test-deps ## re-seed the fuzz corpora from real client traffic through a recording proxy (fuzz/seed_corpus.py)
	$(VENV)/bin/python fuzz/seed_corpus.py

bench: ## run the benchmark (tests/bench/run.sh, owned by the bench work)
	@if [ -f $(BENCH_SCRIPT) ]; then \
	  bash $(BENCH_SCRIPT); \
	else \
	  echo "make bench: $(BENCH_SCRIPT) does not exist yet (the shoal-bench work provides it)" >&2; \
	  exit 1; \
	fi

cluster: build ## three combined nodes on 127.0.0.1 (Kafka 19092-19094), data in ./.cluster; waits until ready
	bash deploy/local-cluster.sh start $(CLUSTER_DIR)

cluster-split: build ## 3 controller-only + 3 broker-only nodes (Kafka 19092-19094), data in ./.cluster-split
	LAYOUT=split bash deploy/local-cluster.sh start $(CLUSTER_SPLIT_DIR)

cluster-stop: ## stop the nodes of `make cluster` / `make cluster-split` (SIGTERM; data is kept)
	bash deploy/local-cluster.sh stop $(CLUSTER_DIR)
	@[ ! -d $(CLUSTER_SPLIT_DIR) ] || bash deploy/local-cluster.sh stop $(CLUSTER_SPLIT_DIR)

cluster-status: ## readiness of each node of `make cluster` / `make cluster-split`
	@for d in $(CLUSTER_DIR) $(CLUSTER_SPLIT_DIR); do \
	  if ls $$d/node*.pid >/dev/null 2>&1; then echo "$$d:"; bash deploy/local-cluster.sh status $$d; fi; \
	done

clean-data: ## delete ./data (the default node's data)
	rm -rf $(DATA_DIR)
