# Front door: `make up` runs amphi (API + worker) on this machine, `make test` runs the
# tests. Both create .venv and install the project into it first; re-runs skip the
# install until pyproject.toml changes. Redis and PostgreSQL are used when they answer,
# otherwise embedded ones are started (amphi/devservices.py).

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: up test lint install

up: install
	exec $(VENV)/bin/amphi up $(ARGS)

test: install
	$(VENV)/bin/pytest $(ARGS)

lint: install
	$(VENV)/bin/ruff check .

install: $(STAMP)

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "amphi needs Python >= 3.11, but '$(PYTHON)' is: $$($(PYTHON) --version 2>&1)." >&2; \
	  echo "Install Python 3.11+ or point to it: make $(MAKECMDGOALS) PYTHON=python3.11" >&2; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $@
