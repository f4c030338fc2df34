# datasafe: two commands matter.
#   make demo   set everything up and run the main job on the bundled demo stack
#   make test   set everything up and pass the whole suite (lint, pytest, molecule)
# Every target installs what it needs; nothing has to be installed by hand first.

SHELL := bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
STAMP := $(VENV)/.installed
ANSIBALLZ_HOOK := $(VENV)/.ansiballz-cache-hook
BIN := $(VENV)/bin

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

MOLECULE_SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: help setup venv testbed demo main-job test lint pytest run-pytest molecule run-molecule bench bench-db bench-backup \
	bench-update bench-restore bench-dbguard bench-dbguard-floor bench-rpo bench-undo bench-recover dbguard lock clean-testbed

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

venv: $(STAMP) $(ANSIBALLZ_HOOK) ## the pinned Python environment in .venv

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) is missing; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip==25.3 2> >(grep -v '^WARNING: Location' >&2)
	@$(BIN)/python -m pip install --quiet -r requirements.txt 2> >(grep -v '^WARNING: Location' >&2)
	@touch $@
	@echo "setup: python environment ready in .venv"

# The venv's Python keeps the compiled code of Ansible's module payloads between tasks
# (pyhooks/datasafe_ansiballz_cache.py: about 0.2 s of CPU less per module task; DATASAFE_ANSIBALLZ_CACHE=off turns it off).
$(ANSIBALLZ_HOOK): $(STAMP) pyhooks/datasafe_ansiballz_cache.py
	@printf '%s\nimport datasafe_ansiballz_cache; datasafe_ansiballz_cache.install()\n' "$(CURDIR)/pyhooks" \
		>"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/datasafe_ansiballz_cache.pth"
	@touch $@

testbed: venv ## Docker engine, Compose v2, PostgreSQL image, backend wheelhouse
	@bash testbed/setup.sh

setup: venv testbed ## everything the demo and the tests need (idempotent)

# The demo has its own inventory and names (datasafe-demo); testbed/demo_guard.yml refuses to
# run against anything that is not the demo's stack. The default inventory points at nothing.
DEMO_ROOT := /var/tmp/datasafe-demo
DEMO_INVENTORY := inventory/demo

demo: setup ## bring up the demo stack, seed it if empty, pin its volume, install the guard inside PostgreSQL, run the main job (the safe update)
	@bash testbed/make-app-repo.sh examples/lms $(DEMO_ROOT)
	@ansible-playbook -i $(DEMO_INVENTORY) testbed/demo_stack.yml
	@ansible-playbook -i $(DEMO_INVENTORY) testbed/demo_guard.yml playbooks/pin.yml playbooks/dbguard.yml
	@$(MAKE) main-job

# The main job: the protocol's safe update, on the demo stack (after the demo guard).
main-job:
	@ansible-playbook -i $(DEMO_INVENTORY) testbed/demo_guard.yml playbooks/safe_update.yml

test: setup lint ## the whole suite: lint, then pytest (over workers) beside every molecule scenario
	@bash testbed/run-suite.sh

lint: venv ## yamllint, ansible-lint (production profile + datasafe rules), ruff
	yamllint --strict .
	ansible-lint
	ruff check .
	ruff format --check .

# Files (or packages sharing one bed) are spread over PYTEST_WORKERS processes: see tests/conftest.py.
PYTEST_WORKERS ?= 3
# Per-test times (setup, call and teardown) for the suite's summary: testbed/suite_summary.py.
PYTEST_JUNIT ?= /tmp/datasafe-pytest-junit.xml

pytest: setup ## unit, corpus and integration tests (real containers), over PYTEST_WORKERS workers
	@$(MAKE) run-pytest

run-pytest:  # pytest itself, without setup (testbed/run-suite.sh runs it beside run-molecule)
	pytest -n $(PYTEST_WORKERS) --dist loadgroup --junitxml=$(PYTEST_JUNIT)

molecule: setup ## every molecule scenario against throwaway stacks (shared base: .config/molecule/config.yml)
	@$(MAKE) run-molecule

# molecule's scenarios run in two lanes side by side (testbed/run-molecule.sh): these in the first,
# every other one (a new scenario too) in the second; the two take about as long as each other
# (CI, 2026-12-02: update 2057 s + default 181 s; continuous 1065, restore 381, restore_drill 258,
# backup 234, offsite 192).
MOLECULE_LANE_1 ?= update default

run-molecule:  # the scenarios themselves, without setup; every one runs, the failed ones are named at the end
	@bash testbed/run-molecule.sh $(CURDIR)/.config/molecule/config.yml \
	  "$(filter $(MOLECULE_LANE_1),$(MOLECULE_SCENARIOS))" "$(filter-out $(MOLECULE_LANE_1),$(MOLECULE_SCENARIOS))"

bench: bench-backup bench-update bench-restore bench-dbguard bench-rpo bench-undo bench-recover ## every benchmark (ratios against the manual protocol)

bench-db: setup ## build (or reuse) the ~1 GB benchmark database
	@bash bench/benchdb.sh

bench-backup: bench-db ## backup.yml against pg_dump > file && gzip, on the ~1 GB database
	@bash bench/bench_backup.sh

bench-update: setup ## safe_update.yml downtime against the manual update sequence
	@bash bench/bench_update.sh

bench-restore: bench-db ## restore.yml against the manual EMERGENCY RECOVERY, on the ~1 GB database
	@bash bench/bench_restore.sh

bench-dbguard: setup ## the guard inside PostgreSQL: pgbench TPS and a bulk DELETE, guarded vs unguarded
	@bash bench/bench_dbguard.sh

bench-dbguard-floor: setup ## what a PL/pgSQL statement trigger costs pgbench before it counts (none, no-op, the guard)
	@$(VENV)/bin/python bench/dbguard_floor.py

# The guard inside PostgreSQL on the demo stack (`make demo` can run it after the stack is up).
dbguard: setup ## install (or repair) the guard inside PostgreSQL on the demo stack
	@ansible-playbook -i $(DEMO_INVENTORY) testbed/demo_guard.yml playbooks/dbguard.yml

bench-rpo: setup ## seconds of commits continuous recovery loses when server and volume are destroyed
	@bash bench/bench_rpo.sh

bench-recover: bench-db ## recover.yml to latest against restore.yml from the last logical backup, on the ~1 GB database
	@bash bench/bench_recover.sh

bench-undo: setup ## a wrong DELETE while writes go on: undo.yml's engine against restoring the last backup
	@bash bench/bench_undo.sh

lock: venv ## re-pin requirements.txt from requirements.in
	$(BIN)/python -m pip install --quiet -r requirements.in
	$(BIN)/python -m pip freeze --exclude-editable | sort -f > requirements.txt

clean-testbed: ## remove leftover test stacks (dstest-*) and the servers of killed pytest runs
	@bash testbed/remove-test-stacks.sh
