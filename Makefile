# Two commands on a fresh machine: `make run` serves the demo, `make test` checks everything.
PYTHON ?= python3
PORT ?= 8080
VENV := .venv
BIN := $(VENV)/bin
# uv installs from uv.lock, exact versions with hashes; it lives in its own venv so that
# `uv sync` (which removes whatever the lock does not name) never removes itself.
UV_VERSION := 0.13.10
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test lint typecheck unit fast bench loadtest cluster clean locale upgrade

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --inexact: `make run` after `make test` must not remove the dev tools from the shared venv.
$(STAMP_RUN): pyproject.toml uv.lock | $(UV)
	$(UV) sync --quiet --locked --inexact --python $(PYTHON)
	touch $@

$(STAMP_DEV): pyproject.toml uv.lock | $(UV)
	$(UV) sync --quiet --locked --extra dev --python $(PYTHON)
	touch $@ $(STAMP_RUN)

# Loopback is a trusted proxy of the demo server, so that a load generator on this machine can
# speak for many citizens through X-Forwarded-For (loadtests/README.md); nothing else is trusted.
run: $(STAMP_RUN)
	QATYSU_SERVER__TRUSTED_PROXIES='["127.0.0.1/32", "::1/128"]' $(BIN)/qatysu serve --demo --port $(PORT)

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONPATH=tests/fixtures/thirdparty_plugin $(BIN)/lint-imports

typecheck: $(STAMP_DEV)
	$(BIN)/mypy

unit: $(STAMP_DEV)
	$(BIN)/pytest

# The inner loop: no PostgreSQL, no Redis, none of the subprocess-starting tests.
fast: $(STAMP_DEV)
	$(BIN)/pytest -q -m "not postgres and not redis and not slow"

test: lint typecheck unit

# Re-resolve uv.lock to the newest releases inside pyproject.toml's ranges, install them and
# run everything CI runs; what moved is left as a diff of uv.lock to review and commit.
upgrade: | $(UV)
	$(UV) lock --upgrade
	$(UV) sync --quiet --locked --extra dev --python $(PYTHON)
	touch $(STAMP_DEV) $(STAMP_RUN)
	$(MAKE) test
	git diff --stat -- uv.lock

# Compile the message catalogues after editing a .po file; the .mo files are committed.
locale: $(STAMP_DEV)
	$(BIN)/pybabel compile --domain qatysu --directory core/wire/locale --statistics

# Every benchmark in turn; each prints its table and writes its JSON under bench-results/.
bench: $(STAMP_DEV)
	$(BIN)/python -m loadtests.bench signing
	$(BIN)/python -m loadtests.bench hotread
	$(BIN)/python -m loadtests.bench overload
	$(BIN)/python -m loadtests.bench costs
	$(BIN)/python -m loadtests.bench generator
	$(BIN)/python -m loadtests.bench watchers

# A fresh demo server, then 60 s of the steady shape under the SLO gate; reports in bench-results/.
loadtest: $(STAMP_DEV)
	QATYSU_SHAPE=Steady $(BIN)/python -m loadtests.local \
		-f loadtests/locustfile.py,loadtests/shapes.py -u 50 -r 25 -t 60s

# HAProxy, two instances, private Redis, a fresh PostgreSQL database and Prometheus; Ctrl-C stops.
cluster: $(STAMP_DEV)
	$(BIN)/python -m loadtests.cluster

clean:
	rm -rf $(VENV) $(TOOLS) var .mypy_cache .ruff_cache .pytest_cache
