# The two commands a newcomer needs: `make up` (the platform, on a local or given cluster) and `make test`.
# Every target does its own set-up; nothing must be installed by hand first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= local
STAMP := $(VENV)/.installed

.PHONY: help setup system-deps tools test test-unit lint render up down benchmarks docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

system-deps:  ## install the Debian packages the tests run for real (PostgreSQL, Redis, Prometheus, Alertmanager)
	@tools/install-system-deps.sh

$(STAMP): pyproject.toml
	python3.11 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: system-deps $(STAMP)  ## create .venv with the pinned Python packages

tools: setup  ## build (or reuse from the version-keyed cache) the Go tools: control plane, kwok, etcd, Pulumi engine
	@tools/build-tools.sh

test: setup tools  ## run every test: unit, integration (real servers), e2e (local control plane + Pulumi engine)
	$(PY) -m pytest

test-unit: setup  ## only the tests that need no server
	$(PY) -m pytest tests/unit

lint: setup  ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy remediation infra policy

render: setup  ## the `render` stack (production's settings) as YAML files in build/manifests/render/, no cluster
	@tools/render.sh

up: setup tools  ## the main job: pulumi up of the `local` stack (starts a local cluster unless KUBECONFIG is set)
	@tools/up.sh

down: setup  ## destroy the stack and stop the local cluster
	@tools/down.sh

benchmarks: setup tools  ## run every benchmark; each prints a ratio against a baseline measured in the same run
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

docs: setup  ## regenerate docs/runbooks/ from runbooks/
	$(VENV)/bin/remediation docs runbooks/ --out docs/runbooks

clean:  ## remove build output and local state (not the tool cache)
	rm -rf build .state .pytest_cache .mypy_cache .ruff_cache
