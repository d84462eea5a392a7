# One entry point for people and CI. `make test` is what .ci/run calls.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup lint types test test-host test-kernel test-debian12 deb test-package run bench clean

setup:
	scripts/setup

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

types: setup
	$(VENV)/bin/mypy

test-host: setup
	$(PY) -m pytest -m "not kernel" $(PYTEST_ARGS)

# The kernel suite boots Debian's stock kernel once under qemu and runs every
# test marked `kernel` inside that one guest.
test-kernel: setup
	scripts/vm-test

# The host suite once more, on Debian 12's own python3 packages (a second venv, .venv-debian12):
# the minimums pyproject.toml declares, which the Debian package depends on, stay honest.
test-debian12: setup
	scripts/test-debian12 $(PYTEST_ARGS)

# The Debian package, built into dist/: lintian must report no error, systemd-analyze must verify
# its unit, and the unit's hardening score is printed. Needs only Debian's build tools (installed
# by the script), not the test suite's venv: operators run it on a director.
deb:
	scripts/build-deb

# The package installed in a throwaway VM over Debian's ldirectord: the ldirectord command-line
# contract, Debian's OCF agent under ocf-tester, the manual pages, a rollback, and a purge.
test-package: setup deb
	scripts/vm-test --package

test: setup lint types test-host test-kernel test-debian12 test-package

run: setup
	scripts/demo

bench: setup
	scripts/bench

clean:
	rm -rf $(VENV) .venv-debian12 build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
