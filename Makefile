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

# apt needs root; use sudo when we are not root and sudo exists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && echo sudo; })

VENV_STAMP := $(VENV)/.requirements.stamp

.PHONY: help run build test test-deps check test-rust test-python bench clean-data cluster cluster-split cluster-stop cluster-status

help: ## list the verbs
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN{FS=":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

build: ## release build of the shoal binary
	$(CARGO) build --release --bin shoal

# One node holds every copy: the offsets topic gets one replica, as in Kafka's single-node
# config (the built-in default, Kafka's 3, waits for three brokers before groups work).
run: build ## build, then run one node (controller+broker) with data in ./data
	exec $(SHOAL_BIN) --data-dir $(DATA_DIR) --override offsets.topic.replication.factor=1

test: test-deps check test-rust test-python ## everything CI runs: deps, lint, Rust tests, client tests

test-deps: $(VENV_STAMP) ## install kcat (apt) and the Python test venv, only when missing/changed
	@if command -v kcat >/dev/null 2>&1; then \
	  echo "kcat: $$(command -v kcat)"; \
	else \
	  echo "kcat missing: installing the Debian package"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kcat; \
	fi

$(VENV_STAMP): tests/requirements.txt
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	@touch $@

check: ## rustfmt and clippy (warnings are errors)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-rust: ## cargo test for the whole workspace
	$(CARGO) test --workspace $(RUST_TEST_ARGS)

test-python: build $(VENV_STAMP) ## real-client tests (kcat, confluent-kafka, kafka-python) against the real binary
	SHOAL_BIN=$(abspath $(SHOAL_BIN)) $(VENV)/bin/pytest tests/python -v \
	  --timeout=$(PYTEST_TIMEOUT) -p no:cacheprovider $(PYTEST_ARGS)

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
