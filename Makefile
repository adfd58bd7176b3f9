# Everything creates the virtualenv it needs: a fresh machine needs only Python >= 3.11 and a C compiler.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup test test-unit test-integration test-e2e test-tools lint format demo migrate bench chaos all clean services-stop

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create the virtualenv and install the project with its dev tools

test: $(STAMP) ## every tier CI runs: unit, integration, e2e (starts the embedded servers when no URLs are set)
	$(BIN)/pytest

test-unit: $(STAMP) ## pure logic, no servers
	$(BIN)/pytest tests/unit -m unit

test-integration: $(STAMP) ## real PostgreSQL and Redis (configured, else embedded)
	$(BIN)/pytest -m integration

test-e2e: $(STAMP) ## real worker, beat, api and sandbox processes
	$(BIN)/pytest tests/e2e

test-tools: $(STAMP) ## optional tier: deploy/ checked by docker compose (a missing plugin fails)
	$(BIN)/pytest tests/tools

lint: $(STAMP) ## ruff, mypy --strict on every package, import-linter layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP) ## run the demo campaign on the embedded default (VIA_SANDBOX=1: real HTTP channels; FLAVOR=vapi|retell|twilio|elevenlabs|seed004)
	$(BIN)/dialer demo $(if $(VIA_SANDBOX),--via-sandbox) $(if $(FLAVOR),--flavor $(FLAVOR))

migrate: $(STAMP) ## apply database migrations
	$(BIN)/dialer db upgrade

bench: $(STAMP) ## benchmarks: figures and ratios, written as JSON to bench/results/
	$(BIN)/python -m bench

# Not part of `make test`: each fault run starts its own servers and takes minutes.
# CHAOS_ARGS="--customers 200 --faults none,worker-kill --deadline 300" for a short run.
chaos: $(STAMP) ## fault runs (kill -9, Redis restarts, beat failover, ingress kill) audited against the sandbox ledger
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

.PHONY: docs flower screenshots

screenshots: $(STAMP) ## the dashboard's pictures in docs/screenshots, taken by its browser test (needs /usr/bin/chromium)
	DIALER_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/e2e/test_dashboard_browser.py

docs: $(STAMP) ## regenerate the settings reference in docs/OPERATIONS.md from dialer.settings
	$(BIN)/python -m dialer.opsdoc docs/OPERATIONS.md

flower: $(STAMP) ## Flower on DIALER_FLOWER_PORT (needs DIALER_FLOWER_PASSWORD); Prometheus metrics on /metrics
	$(BIN)/dialer flower

all: lint test

services-stop: $(STAMP)
	$(BIN)/dialer services stop

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
