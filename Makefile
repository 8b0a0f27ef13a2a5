# The two commands of the README:
#   make demo   the daemon on SQLite with a demo clinic and dry-run providers
#   make test   install what the tests need, then the whole suite on SQLite and a throwaway PostgreSQL
# And for the edit loop:
#   make check  lint, format, types and the unit tests (no PostgreSQL, Prism or browser)
#   make lint   lint, format and types only
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test check install install-dev install-test lint bench bench-quick chaos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# Python packages only: what lint and check need.
install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

# And the outside programs the whole suite uses: Prism, PostgreSQL, Chromium.
install-test: install-dev
	bash .ci/prism.sh >/dev/null
	bash .ci/postgres.sh
	bash .ci/browser.sh

demo: install
	$(BIN)/reminders demo

# Tests run in parallel (pytest-xdist), one process per core up to 4; each process starts its
# own PostgreSQL cluster and Prism servers. --dist loadscope keeps each test module in one
# process, in order (the browser tests share one server; loadgroup would be finer, but
# pytest-xdist 3.8 ignores xdist_group marks under pytest 9.2: pytest-xdist issue #1386).
# PYTEST_WORKERS=0 runs them all in one process.
PYTEST_WORKERS ?= auto
# pytest exit status 5 (no tests collected) is a failure here, not a silent pass.
test: install-test
	REMINDERS_TEST_REQUIRE_PG=1 REMINDERS_TEST_REQUIRE_PRISM=1 REMINDERS_TEST_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadscope $(PYTEST_ARGS); \
	status=$$?; if [ $$status -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$status

lint: install-dev
	$(BIN)/ruff check reminders tests bench tools
	$(BIN)/ruff format --check reminders tests bench tools
	$(BIN)/mypy
	$(BIN)/pre-commit validate-config

check: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit; \
	status=$$?; if [ $$status -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$status

bench: install-test
	$(BIN)/python bench/run_all.py

# Every benchmark at small sizes (a few minutes): that they still run, not their figures.
bench-quick: install-test
	$(BIN)/python bench/run_all.py --quick

# The chaos suite: workers killed, provider faults, PostgreSQL restarts (bench/chaos.py; about
# 20 minutes; CHAOS_ARGS=--quick for small sizes).
chaos: install-test
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) reminders.db reminders.db-* outbox .pytest_cache .hypothesis
