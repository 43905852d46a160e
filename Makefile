# glancesync developer entry points. Every target installs what it needs itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-test.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install test test-fast lint bench demo demo-stop clean

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-test.txt
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## All tests: lint, unit, CLI, scenarios, API (SQLite and PostgreSQL), integration (testbed).
test: install
	$(PY) -m ruff check .
	$(PY) -m pytest

## Everything but the tests that need the OpenStack testbed.
test-fast: install
	$(PY) -m pytest -m "not integration"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: install
	$(PY) bench/show_status.py

## Testbed, images in Spain2, the REST service under gunicorn, a sync through its API.
demo: install
	$(PY) -m demo start

## Stops the service and the testbed that `make demo` started.
demo-stop: install
	$(PY) -m demo stop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
