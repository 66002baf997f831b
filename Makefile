# Common Purpose Model: every set-up step is here, so a fresh machine needs only `make app`
# or `make test`. Everything runs through .venv/bin/python, whatever is on PATH.
#
#   make app    create .venv, install the app, serve it at http://127.0.0.1:8765 (Ctrl-C stops it;
#               `solara run app.py` with a room's settings, see abm/app/serve.py)
#   make test   create .venv, install everything (and Debian's chromium), run the whole test suite
#   make lint   ruff check + ruff format --check
#
# Settings you can override: make app PORT=8800 CULL_TIMEOUT=10m, make test TESTS=tests/browser PYTEST_ARGS=-x.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP_APP := $(VENV)/.installed-app
STAMP_ALL := $(VENV)/.installed-all
CHROMIUM := /usr/bin/chromium

HOST ?= 127.0.0.1
PORT ?= 8765
# --production: no hot reload. In development mode a change to any watched file (abm/*.py)
# makes solara re-import numpy, which fails ("cannot load module more than once per process").
SOLARA_ARGS ?= --production --no-check-version
# A closed tab frees its run at once; a page that just goes away (a laptop asleep, the Wi-Fi
# gone) keeps its run this long, so it can reconnect and carry on (Solara's default is 24h).
CULL_TIMEOUT ?= 1h
TESTS ?= tests/
PYTEST_ARGS ?=
WORKERS ?= 2

# Offline and private: no telemetry, no pip self-update check, no prompts.
export SOLARA_TELEMETRY_MIXPANEL_ENABLE := False
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

# Python >= 3.12: `python3` here resolves to 3.12 through pyenv and .python-version; else python3.12.
BOOT_PYTHON := $(shell for p in python3 python3.12; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; \
	then echo $$p; break; fi; done)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help app test lint venv install-app install-all chromium

help:
	@echo "make app   - install (if needed) and serve the app at http://$(HOST):$(PORT)"
	@echo "make test  - install everything (if needed) and run the whole test suite"
	@echo "make lint  - ruff check and ruff format --check"

$(PY):
	@if [ -z "$(BOOT_PYTHON)" ]; then \
		echo "error: Python 3.12 or newer is needed (tried python3 and python3.12)." >&2; \
		echo "       Install it (e.g. 'pyenv install 3.12') and run make again." >&2; exit 1; fi
	@echo "Creating $(VENV) with $$($(BOOT_PYTHON) --version) ($(BOOT_PYTHON))"
	$(BOOT_PYTHON) -m venv $(VENV)

venv: $(PY)

# Reinstall only when pyproject.toml changed since the last install (stamp files in .venv).
$(STAMP_APP): pyproject.toml | $(PY)
	@if [ -f $(STAMP_ALL) ] && [ $(STAMP_ALL) -nt pyproject.toml ]; then \
		echo "App dependencies already installed (with [all])."; \
	else \
		$(PY) -m pip install -e '.[app]'; \
	fi
	@touch $@

$(STAMP_ALL): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[all]'
	@touch $@ $(STAMP_APP)

install-app: $(STAMP_APP)
install-all: $(STAMP_ALL)

# The browser tests use Debian's chromium (Playwright cannot download its own browser offline).
chromium:
	@if [ -x $(CHROMIUM) ]; then \
		echo "chromium: $(CHROMIUM) present"; \
	else \
		echo "Installing Debian's chromium (apt-get)"; \
		$(SUDO) apt-get update; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium; \
	fi

app: $(STAMP_APP)
	SOLARA_KERNEL_CULL_TIMEOUT=$(CULL_TIMEOUT) $(PY) -m abm.app.serve --host $(HOST) --port $(PORT) $(SOLARA_ARGS)

test: $(STAMP_ALL) chromium
	$(PY) -m pytest -n $(WORKERS) $(TESTS) $(PYTEST_ARGS)

lint: $(STAMP_ALL)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
