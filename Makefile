# RiderWatch. `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENDOR := src/riderwatch/static/vendor
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PYTEST_WORKERS ?= 2

.PHONY: run test lint bench install system-deps services vendor messages clean help

help:
	@echo "make run    install everything, load the demo district, serve on http://127.0.0.1:8000"
	@echo "make test   install everything, lint, run the whole suite on SQLite and PostgreSQL"
	@echo "make lint   ruff (checks, formatting), mypy and the import layers (lint-imports)"
	@echo "make vendor refresh the committed front-end libraries from package-lock.json (needs npm)"
	@echo "make bench  benchmarks: clue submissions, Gi* hotspots, position ingest, OsmAnd, coverage queries, task verification, alerts to live streams (SQLite and PostgreSQL)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

system-deps:
	@scripts/system-deps.sh

services:
	@scripts/services.sh

# The front-end libraries are committed under $(VENDOR): the wheel, `make run` and `make test` need no npm.
# To upgrade one: `npm install leaflet@1.9.5` (updates package-lock.json), then `make vendor` (installs the
# locked versions and copies them over) and commit both; tests/test_wheel.py checks the copies against node_modules.
vendor:
	@scripts/system-deps.sh --npm
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/leaflet $(VENDOR)/htmx $(VENDOR)/chartjs
	cp -r node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css \
	      node_modules/leaflet/dist/images node_modules/leaflet/LICENSE $(VENDOR)/leaflet/
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx.org/LICENSE $(VENDOR)/htmx/
	cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/LICENSE.md $(VENDOR)/chartjs/

install: system-deps $(VENV)/.installed

run: install
	$(BIN)/riderwatch demo
	$(BIN)/riderwatch serve --host 127.0.0.1 --port 8000

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: install services lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider tests
	RIDERWATCH_TEST_DB=postgresql RIDERWATCH_TEST_PG_URL=$(PG_URL) \
	  $(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider tests

bench: install services
	$(BIN)/python -m bench.clue_submissions --pg-url $(PG_URL)
	$(BIN)/python -m bench.hotspots --pg-url $(PG_URL)
	$(BIN)/python -m bench.ingest --pg-url $(PG_URL)
	$(BIN)/python -m bench.coverage --pg-url $(PG_URL)
	$(BIN)/python -m bench.tasks --pg-url $(PG_URL)
	$(BIN)/python -m bench.desk --pg-url $(PG_URL)
	$(BIN)/python -m bench.alerts_stream --pg-url $(PG_URL)

# Refresh the catalogues after changing UI strings; then translate the new msgids in locale/zh.
messages: $(VENV)/.installed
	$(BIN)/pybabel -q extract -F src/riderwatch/babel.cfg --no-location --sort-output \
	  -o src/riderwatch/locale/messages.pot src/riderwatch
	$(BIN)/pybabel -q update -i src/riderwatch/locale/messages.pot -d src/riderwatch/locale -D messages \
	  --no-fuzzy-matching --ignore-obsolete -w 120

clean:
	rm -rf $(VENV) node_modules var
