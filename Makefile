# glancesync developer entry points. Every target installs what it needs itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-test.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install test test-fast stress-test lint wheel bench demo demo-stop screenshot browser clean

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-test.txt
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## Debian's Chromium and its driver for the browser tests (Selenium never downloads one);
## installed with apt-get only when missing.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	  chromium chromium-driver; }

## All tests: lint, unit, CLI, scenarios, API (SQLite and PostgreSQL), integration (testbed).
test: install browser
	$(PY) -m ruff check .
	$(PY) -m pytest

## Everything but the tests that need the OpenStack testbed.
test-fast: install
	$(PY) -m pytest -m "not integration"

## The concurrency tests (pytest -m concurrency) STRESS_RUNS times in a row beside a CPU
## hog (Debian's stress-ng --cpu 2, installed with apt-get when missing): each run's time
## and failed tests, then a verdict; fails when any run failed (docs/reliability.md).
## STRESS_ARGS narrows the runs (pytest arguments, e.g. STRESS_ARGS=tests/api).
STRESS_RUNS ?= 3
STRESS_ARGS ?=
stress-test: install
	@command -v stress-ng >/dev/null || { apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends stress-ng; }
	@logs=$$(mktemp -d); stress-ng --cpu 2 --quiet & hog=$$!; \
	trap 'kill $$hog 2>/dev/null; wait $$hog 2>/dev/null' EXIT; failed=0; \
	for run in $$(seq $(STRESS_RUNS)); do \
	  start=$$(date +%s); \
	  $(PY) -m pytest -m concurrency -q -p no:cacheprovider $(STRESS_ARGS) >$$logs/run-$$run.log 2>&1; \
	  code=$$?; [ $$code -eq 0 ] || failed=$$((failed + 1)); \
	  echo "run $$run of $(STRESS_RUNS): exit $$code in $$(( $$(date +%s) - start )) s:" \
	    "$$(tail -n 1 $$logs/run-$$run.log)"; \
	  grep -E '^(FAILED|ERROR) ' $$logs/run-$$run.log || true; \
	done; \
	echo "stress-test: $$failed of $(STRESS_RUNS) runs failed beside stress-ng --cpu 2" \
	  "(logs in $$logs)"; \
	[ $$failed -eq 0 ]

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

## dist/glancesync-<version>-py3-none-any.whl: core, CLI and service with its data files
## (pip install 'dist/glancesync-...whl[service,postgresql]', see docs/deploy/).
wheel: install
	$(PY) -m pip wheel --quiet --no-deps -w dist .

bench: install
	$(PY) bench/show_status.py

## Testbed, images in Spain2, the REST service under gunicorn, a sync through its API.
demo: install
	$(PY) -m demo start

## docs/ui.png: the status page of the demo (starts the demo first).
screenshot: install browser demo
	$(PY) -m demo screenshot docs/ui.png

## Stops the service and the testbed that `make demo` started.
demo-stop: install
	$(PY) -m demo stop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
