# The two commands a new user needs (see README.md):
#   make demo   set everything up, run a throwaway TRE end to end, show the disclosure report
#   make test   set everything up, run every check and test (what CI runs)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_HOME ?= .demo
ROWS ?= 20000
BACKEND ?= local   # make demo BACKEND=slurm runs the demo's jobs on the test Slurm cluster

.PHONY: test-system-deps sandbox-setup demo test check lint typecheck docs-check pytest slurm-up slurm-down bench bench-acro bench-sdc docs clean system-deps

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

demo: $(STAMP) sandbox-setup
	@if [ "$(strip $(BACKEND))" = slurm ]; then bash slurm/devcluster/start.sh; fi
	$(PY) -m tre.demo.walkthrough --home $(DEMO_HOME) --rows $(ROWS) --backend $(strip $(BACKEND))

# Slurm and browser tests must run here, not skip: the test cluster is started first and
# TRE_REQUIRE_ALL=1 turns a missing one into a failure. Each stage says how long it took
# (pytest's own closing line gives its time, and stays the last line CI reads).
TIMED = bash -c 'start=$$(date +%s); "$${@:2}"; rc=$$?; \
	echo "make test: $$1 took $$(( $$(date +%s) - start ))s"; exit $$rc' timed
test:
	@$(TIMED) install $(MAKE) --no-print-directory $(STAMP)
	@$(TIMED) checks $(MAKE) --no-print-directory check
	@$(TIMED) "system packages and users" $(MAKE) --no-print-directory test-system-deps sandbox-setup
	@$(TIMED) "cluster start" $(MAKE) --no-print-directory slurm-up
	@echo "make test: pytest starts (a preflight first: a host where jobs cannot start ends it)"
	@$(MAKE) --no-print-directory pytest

# What the browser and HSM tests need from Debian (root): Chromium and SoftHSM.
test-system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v softhsm2-util >/dev/null || missing="$$missing softhsm2"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Researcher code runs sandboxed (docs/threat-model.md): bubblewrap, util-linux's setpriv
# and prlimit, iproute2 (the hostile-code tests' own test host), sudo (a Slurm job is
# submitted as its job user: docs/slurm.md, 'The job account'), and system users:
# tre-keys (the key service, the only holder of keys), tre-job (the sandbox preflight's
# probe; its group reads the datasets' ciphertext) and the job users' pool
# (slurm/job_users.py): per slot, tre-job-<k> (a job's engine) and tre-code-<k> (its
# researcher code, in the job user's group, so it reads its job's inputs but writes
# nothing the engine does), so no two running jobs share a uid.
sandbox-setup: $(STAMP)
	@missing=""; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	command -v setpriv >/dev/null || missing="$$missing util-linux"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v sudo >/dev/null || missing="$$missing sudo"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@for user in tre-job tre-keys; do \
		id -u $$user >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin $$user; \
	done
	@$(PY) -m slurm.job_users | sh -e

slurm-up:
	bash slurm/devcluster/start.sh

slurm-down:
	bash slurm/devcluster/stop.sh

check: lint typecheck docs-check

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

docs-check: $(STAMP)
	$(PY) -m tre.docs --check

# Two lanes at once (tests/two_lanes.py): the Slurm tests one after another, the rest
# beside them; most of the suite's time is waiting, not computing.
pytest: $(STAMP)
	TRE_REQUIRE_ALL=1 $(PY) -m tests.two_lanes --durations=15

bench: $(STAMP)
	$(PY) -m bench.run

# ACRO in its own venv (bench/.venv-acro, made on first use: it pins an older pandas).
bench-acro: $(STAMP)
	$(PY) -m bench.acro_compare

# Secondary suppression against τ-Argus (pytauargus with HiGHS) in its own venv
# (bench/.venv-tauargus, made on first use), on the same tables up to 10^5 cells.
bench-sdc: $(STAMP)
	$(PY) -m bench.sdc_compare

docs: $(STAMP)
	$(PY) -m tre.docs

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
