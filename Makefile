# The two commands a new user needs (see README.md):
#   make demo   set everything up, run a throwaway TRE end to end, show the disclosure report
#   make test   set everything up, run every check and test (what CI runs)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_HOME ?= .demo
ROWS ?= 20000

.PHONY: demo test check lint typecheck docs-check pytest bench docs clean system-deps

# Debian's python3 lacks venv and headers until python3-venv/python3-dev are installed.
system-deps:
	@if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then \
		echo "installing python3-venv (needs root)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-dev >/dev/null; \
	fi

$(STAMP): pyproject.toml | system-deps
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m tre.demo.walkthrough --home $(DEMO_HOME) --rows $(ROWS)

test: $(STAMP) check pytest

check: lint typecheck docs-check

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

docs-check: $(STAMP)
	$(PY) -m tre.docs --check

pytest: $(STAMP)
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) -m bench.run

docs: $(STAMP)
	$(PY) -m tre.docs

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
