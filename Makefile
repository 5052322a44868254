# Every target creates .venv and installs the project into it when needed: the service alone for `run`,
# with the test extras (PostgreSQL driver, MCP SDK, fastmcp, OpenTelemetry, Playwright, linters) for the others.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The suite runs on this many pytest-xdist workers, a test module to each (its module fixtures shared);
# most tests wait on servers and subprocesses, so two workers took it from 18 to about 10 minutes on
# two cores.
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

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
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

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
