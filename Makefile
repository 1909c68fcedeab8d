PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: install test test-unit bench chaos lint clean run

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(STAMP): pyproject.toml setup.py converter/_accel.pyx converter/_emit.pyx | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

# The browser the page's tests drive: Debian's chromium (Playwright's own download is not
# reachable). Installed once, when missing; apt's lists are refreshed only if the install fails.
$(CHROMIUM):
	@echo "installing chromium (apt-get) for tests/integration/test_page.py"
	@export DEBIAN_FRONTEND=noninteractive; \
	sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$sudo apt-get install -y -qq chromium >/dev/null 2>&1 \
	|| { $$sudo apt-get update -qq >/dev/null && $$sudo apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM)

install: $(STAMP) $(CHROMIUM)

test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/pytest

# tests/unit alone: no gunicorn, no Celery worker (a redis-server for the job store's tests).
test-unit: $(STAMP)
	$(BIN)/pytest -n 2 tests/unit

# The peers of the dense benchmark (pyproject.toml's bench extra), without reinstalling the project.
$(VENV)/.bench: pyproject.toml | $(STAMP)
	$(BIN)/python scripts/extra_requirements.py bench > $(VENV)/bench-requirements.txt
	$(BIN)/pip install -r $(VENV)/bench-requirements.txt
	touch $@

bench: $(STAMP) $(VENV)/.bench
	$(BIN)/python bench/run.py

# Fault injection on the real stack (bench/chaos.py): no job lost, duplicated or wrong.
chaos: $(STAMP)
	$(BIN)/python bench/chaos.py

# The whole stack on this machine, no Docker: Redis (unless REDIS_URL answers), the API under
# gunicorn, a worker, beat and Flower, under honcho (Procfile). Ctrl-C stops them all.
run: $(STAMP)
	@mkdir -p var
	@export PATH="$(CURDIR)/$(BIN):$$PATH"; \
	procs=$$(python scripts/dev_preflight.py) || exit 1; \
	exec honcho -f Procfile start $$procs

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
