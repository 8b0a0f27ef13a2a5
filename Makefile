# The two commands of the README:
#   make demo   the daemon on SQLite with a demo clinic and dry-run providers
#   make test   install what the tests need, then the whole suite on SQLite and a throwaway PostgreSQL
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	bash .ci/prism.sh >/dev/null
	bash .ci/postgres.sh
	bash .ci/browser.sh

demo: install
	$(BIN)/reminders demo

# pytest exit status 5 (no tests collected) is a failure here, not a silent pass.
test: install-test
	REMINDERS_TEST_REQUIRE_PG=1 REMINDERS_TEST_REQUIRE_PRISM=1 REMINDERS_TEST_REQUIRE_BROWSER=1 $(BIN)/python -m pytest $(PYTEST_ARGS); \
	status=$$?; if [ $$status -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$status

lint: install-test
	$(BIN)/ruff check reminders tests bench
	$(BIN)/mypy reminders

bench: install-test
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) reminders.db reminders.db-* outbox .pytest_cache .hypothesis
