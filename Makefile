# The project's vocabulary. `make demo` and `make test` work on a fresh machine: they install their
# Python tools into .venv, start the AWS emulator on a free loopback port, and stop it afterwards.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# Terraform providers: a local plugin mirror when the machine has one (no registry access here),
# otherwise the public registry as usual. Override with TF_PLUGIN_DIR=... or TF_PLUGIN_DIR= .
TF_PLUGIN_DIR ?= $(firstword $(wildcard /opt/tf-plugins))
export TF_PLUGIN_DIR

# The one debug build of the SDK per run: `cargo nextest run` builds the tests and the binary
# together (same features), and everything after it uses that binary.
# Cargo's output directory: ./target, or $CARGO_TARGET_DIR where the user keeps one.
TARGET      := $(abspath $(or $(CARGO_TARGET_DIR),target))
HOOK_BIN    ?= $(TARGET)/debug/nat-asg-hook
export HOOK_BIN

.PHONY: help venv lock nextest bin build test test-rust test-py lint fmt demo bench lab aws-trial watch invoke tf-check ami-latest clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# The Python tools install from the lock (requirements.txt: exact versions, hashes required), never
# from a fresh resolve, so a new machine gets what CI tested; then nat_lab itself, editable, with no
# resolve of its own. `make lock` regenerates the lock from pyproject.toml's ranges.
$(VENV)/.installed: requirements.txt pyproject.toml
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(VENV)/bin/pip check
	touch $@

venv: $(VENV)/.installed ## Install nat_lab and the locked Python tools (moto, cargo-lambda, zig, pytest, ruff, ...) into .venv

# Keeps every locked version that still satisfies pyproject.toml; UPGRADE=moto (or UPGRADE=all) moves
# on purpose. The lock is universal (every platform's hashes) for Python 3.11 and newer.
lock: ## Regenerate requirements.txt (and the release build's subset, requirements-build.txt) from pyproject.toml (UPGRADE=pkg or UPGRADE=all to move versions)
	test -x $(VENV)/bin/uv || $(MAKE) venv
	$(VENV)/bin/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 --generate-hashes \
		--quiet -o requirements.txt $(if $(filter all,$(UPGRADE)),--upgrade,$(foreach p,$(UPGRADE),--upgrade-package $(p)))
	scripts/build-lock.py

# cargo-nextest, pinned (the workflow's NEXTEST_VERSION too): installed from crates.io, locked, only
# when the machine has no nextest of this version.
NEXTEST_VERSION := 0.9.143
nextest: ## Install cargo-nextest $(NEXTEST_VERSION) unless it is already there
	@cargo nextest --version 2>/dev/null | grep -q "^cargo-nextest $(NEXTEST_VERSION) " \
		|| cargo install cargo-nextest --locked --version "$(NEXTEST_VERSION)"

bin: nextest ## Build the host binary the tests and the demo run (with the tests: one SDK build)
	cargo nextest run --workspace --no-run

build: venv ## Build the arm64 Lambda zip: target/lambda/nat-asg-hook/bootstrap.zip
	rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --release --arm64 --output-format zip --package nat-asg-hook

test: venv nextest ## The whole test suite (what CI runs)
	cargo nextest run --workspace
	scripts/lab-deps.sh
	$(PY) -m pytest tests

demo: venv bin ## The whole story against a local AWS emulator; stops everything it started
	$(PY) -m nat_lab.demo

bench: venv build ## Benchmarks, not tests (the release builds, ~30 min cold): writes docs/benchmarks.md
	cargo build --release --package nat-asg-hook
	$(PY) -m nat_lab.bench --bin $(TARGET)/release/nat-asg-hook --zip $(TARGET)/lambda/nat-asg-hook/bootstrap.zip

# The binary the lab serves: built by `make bin` only when it is missing (HOOK_BIN=... to use another).
$(HOOK_BIN):
	$(MAKE) bin

lab: venv $(HOOK_BIN) ## The data-plane lab (root, ~11 min): every scenario, failover on and off, and the NATs' metrics against the lab's counts; writes target/lab/egress.json, target/lab/metrics.json, docs/egress.md
	scripts/lab-deps.sh
	$(PY) -m nat_lab.lab

# The lab's scenarios on a real account (docs/aws-trial.md): prints the plan and its cost, and runs
# only with CONFIRM=1 (or a "yes" at the prompt). TF_DIR: the applied root stack; ARGS: more options.
TF_DIR ?= terraform
aws-trial: venv ## The lab's egress table from a deployed environment (egress probes on): prints the plan and cost; CONFIRM=1 runs it; writes target/aws-trial/
	$(PY) -m nat_lab.trial --tf-dir $(TF_DIR) $(if $(filter 1,$(CONFIRM)),--yes) $(ARGS)

test-rust: nextest ## Unit and mocked-AWS tests only
	cargo nextest run --workspace

test-py: venv ## Emulator, Terraform and tooling tests only (uses the binary test-rust built)
	scripts/lab-deps.sh
	$(PY) -m pytest tests

lint: venv ## cargo fmt --check, clippy with warnings denied; ruff check and ruff format --check on the Python
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check tools tests scripts
	$(VENV)/bin/ruff format --check tools tests scripts

tf-check: venv ## Terraform fmt, validate (plugin mirror), checkov, trivy, the modules' conventions and the examples; no cloud
	$(PY) -m pytest tests/terraform/test_terraform_static.py tests/terraform/test_terraform_examples.py

ami-latest: ## The newest Amazon Linux 2023 arm64 AMI per environment and the tfvars change to roll to it (PROFILE=..., WRITE=1 makes it)
	scripts/ami-latest.sh $(if $(PROFILE),--profile $(PROFILE)) $(if $(WRITE),--write)

fmt: venv ## Format the Rust and the Python code
	cargo fmt --all
	$(VENV)/bin/ruff format tools tests scripts

watch: venv bin ## Serve the built function behind cargo lambda watch on :9000: make watch CONFIG=hook.json (AWS_ENDPOINT_URL for an emulator)
	$(PY) -m nat_lab.watch $(CONFIG)

invoke: venv ## Invoke the function served by `cargo lambda watch`: make invoke EVENT=events/launch-successful.json
	cargo lambda invoke -A 127.0.0.1 -P 9000 --data-file $(EVENT) nat-asg-hook

clean: ## Remove build output and the virtualenv
	cargo clean
	rm -rf $(VENV) .pytest_cache
