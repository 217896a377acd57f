# Two commands on a fresh machine: `make run` serves the demo, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test lint typecheck unit bench loadtest cluster clean locale

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

# Loopback is a trusted proxy of the demo server, so that a load generator on this machine can
# speak for many citizens through X-Forwarded-For (loadtests/README.md); nothing else is trusted.
run: $(STAMP_RUN)
	QATYSU_SERVER__TRUSTED_PROXIES='["127.0.0.1/32", "::1/128"]' $(BIN)/qatysu serve --demo

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP_DEV)
	$(BIN)/mypy

unit: $(STAMP_DEV)
	$(BIN)/pytest

test: lint typecheck unit

# Compile the message catalogues after editing a .po file; the .mo files are committed.
locale: $(STAMP_DEV)
	$(BIN)/pybabel compile --domain qatysu --directory core/locale --statistics

# Every benchmark in turn; each prints its table and writes its JSON under bench-results/.
bench: $(STAMP_DEV)
	$(BIN)/python -m loadtests.bench signing
	$(BIN)/python -m loadtests.bench hotread
	$(BIN)/python -m loadtests.bench overload
	$(BIN)/python -m loadtests.bench costs
	$(BIN)/python -m loadtests.bench generator

# A fresh demo server, then 60 s of the steady shape under the SLO gate; reports in bench-results/.
loadtest: $(STAMP_DEV)
	QATYSU_SHAPE=Steady $(BIN)/python -m loadtests.local \
		-f loadtests/locustfile.py,loadtests/shapes.py -u 50 -r 25 -t 60s

# HAProxy, two instances, private Redis, a fresh PostgreSQL database and Prometheus; Ctrl-C stops.
cluster: $(STAMP_DEV)
	$(BIN)/python -m loadtests.cluster

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
