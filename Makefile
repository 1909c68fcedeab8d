PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-unit bench chaos lint clean run

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(STAMP): pyproject.toml setup.py converter/_accel.pyx | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

# tests/unit alone: no gunicorn, no Celery worker (a redis-server for the job store's tests).
test-unit: $(STAMP)
	$(BIN)/pytest -n 2 tests/unit

bench: $(STAMP)
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
