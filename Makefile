PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The test environment's lock (scripts/lock.py writes requirements/*.txt from pyproject.toml):
# exact versions with hashes, wheels only, so an install fetches nothing unpinned.
LOCK   := requirements/dev.txt
CHROMIUM := /usr/bin/chromium
PROMTOOL := /usr/bin/promtool
WRK      := /usr/bin/wrk
KUBECTL  := /usr/bin/kubectl

.PHONY: install test test-unit bench chaos loadtest loadtest-profile lint clean run lock lock-upgrade

# The venv keeps the pip it was made with: an upgrade would be the one unpinned download.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Everything from the lock, by hash; then the project alone, built with the lock's setuptools,
# Cython and lxml (no build isolation: nothing fetched for the build either).
$(STAMP): $(LOCK) pyproject.toml setup.py $(wildcard converter/*.pyx converter/*.pxi) | $(BIN)/python
	$(BIN)/pip install --require-hashes --only-binary :all: -r $(LOCK)
	$(BIN)/pip install --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Every lock file again from pyproject.toml after a dependency changed (pins that still fit are
# kept); lock-upgrade moves every package to its newest allowed version. uv comes from the lock.
lock: $(STAMP)
	$(BIN)/python scripts/lock.py

lock-upgrade: $(STAMP)
	$(BIN)/python scripts/lock.py --upgrade

# The browser the page's tests drive: Debian's chromium (Playwright's own download is not
# reachable). Installed once, when missing; apt's lists are refreshed only if the install fails.
$(CHROMIUM):
	@echo "installing chromium (apt-get) for tests/integration/test_page.py"
	@export DEBIAN_FRONTEND=noninteractive; \
	sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$sudo apt-get install -y -qq chromium >/dev/null 2>&1 \
	|| { $$sudo apt-get update -qq >/dev/null && $$sudo apt-get install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM)

# promtool checks /metrics' output and the alert rules (tests/integration/test_metrics.py):
# Debian's prometheus package, without its recommended exporters. Installed once, when missing.
$(PROMTOOL):
	@echo "installing promtool (apt-get prometheus) for tests/integration/test_metrics.py"
	@export DEBIAN_FRONTEND=noninteractive; \
	sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
	|| { $$sudo apt-get update -qq >/dev/null \
	     && $$sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@test -x $(PROMTOOL)

# kubectl renders deploy/kubernetes/'s overlays (`kubectl kustomize`, tests/deploy/
# test_kubernetes.py): Debian's kubernetes-client (kubectl 1.20, kustomize v2.0.3; the manifests
# are written for it and for kubectl's newer kustomize v5 alike) when no kubectl is installed.
$(KUBECTL):
	@echo "installing kubectl (apt-get kubernetes-client) for tests/deploy/test_kubernetes.py"
	@export DEBIAN_FRONTEND=noninteractive; \
	sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$sudo apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null 2>&1 \
	|| { $$sudo apt-get update -qq >/dev/null \
	     && $$sudo apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null; }
	@test -x $(KUBECTL)

install: $(STAMP) $(CHROMIUM) $(PROMTOOL) $(KUBECTL)

test: $(STAMP) $(CHROMIUM) $(PROMTOOL) $(KUBECTL)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest

# tests/unit alone: no gunicorn, no Celery worker (a redis-server for the job store's tests).
# Three processes on two cores: a few tests wait (deadlines, refreshes) while others compute.
test-unit: $(STAMP)
	$(BIN)/pytest -n 3 tests/unit

# The peers of the dense benchmark (pyproject.toml's bench extra), from their lock, by hash.
$(VENV)/.bench: requirements/bench.txt | $(STAMP)
	$(BIN)/pip install --require-hashes --only-binary :all: -r requirements/bench.txt
	touch $@

bench: $(STAMP) $(VENV)/.bench
	$(BIN)/python -m bench.run

# The load generator of `make loadtest`: Debian's wrk, installed once when missing; apt's lists
# are refreshed only if the install fails.
$(WRK):
	@echo "installing wrk (apt-get) for bench/loadtest.py"
	@export DEBIAN_FRONTEND=noninteractive; \
	sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$sudo apt-get install -y -qq wrk >/dev/null 2>&1 \
	|| { $$sudo apt-get update -qq >/dev/null && $$sudo apt-get install -y -qq wrk >/dev/null; }
	@test -x $(WRK)

# What the real stack holds on this machine (bench/loadtest.py): status polls/s (wrk, the
# ceiling) and p50/p99/p99.9 at fixed rates (open loop), small jobs/s from 16 clients, a 300 MB
# job beside `xmlconv convert`, 1,000 event streams, tracing off and on; a table against the
# targets. `make loadtest LOADTEST_ARGS="--quick"` (a few minutes) or "--skip big,tracing" ...
loadtest: $(STAMP) $(WRK)
	$(BIN)/python -m bench.loadtest $(LOADTEST_ARGS)

# The same with py-spy profiles of the API and worker processes (top functions printed).
loadtest-profile: $(STAMP) $(WRK)
	$(BIN)/python -m bench.loadtest --profile var/loadtest-profile $(LOADTEST_ARGS)

# Fault injection on the real stack (bench/chaos.py): no job lost, duplicated or wrong, no
# process exited untold, the hostile client's jobs failed by name. A shorter run:
# `make chaos CHAOS_ARGS="--jobs 200 --faults-per-kind 2"`.
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

# The whole stack on this machine, no Docker (scripts/run_stack.py): Redis (unless REDIS_URL
# answers), a worker, beat, Flower and the API under gunicorn, started in that order. Ctrl-C
# stops them the other way round, each given the time its shutdown takes. GNU make itself still
# ends by the signal it received (its status 130 after Ctrl-C), silently.
run: $(STAMP)
	@exec $(BIN)/python scripts/run_stack.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
