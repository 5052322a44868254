# Every target creates .venv and installs the project into it when needed: the service alone for `run`,
# with the test extras (PostgreSQL driver, MCP SDK, fastmcp, OpenTelemetry, Playwright, linters) for the others.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-web chromium bench lint format check-wheel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[postgres,mcp,otlp]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/activity-feed serve

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# The web feed's browser tests alone (tests/web); they drive Chromium (`make chromium` installs Debian's).
test-web: $(VENV)/.installed-test
	$(BIN)/python -m pytest tests/web

chromium:
	command -v chromium || (apt-get update && apt-get install -y chromium)

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The wheel is the product: build it, install it in a fresh virtualenv, and use it as a user would.
check-wheel:
	bash .ci/check-wheel
