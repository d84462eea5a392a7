# One entry point for people and CI. `make test` is what .ci/run calls.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup lint types test test-host test-kernel run bench clean

setup:
	scripts/setup

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: setup
	$(VENV)/bin/mypy

test-host: setup
	$(PY) -m pytest -m "not kernel" $(PYTEST_ARGS)

# The kernel suite boots Debian's stock kernel once under qemu and runs every
# test marked `kernel` inside that one guest.
test-kernel: setup
	scripts/vm-test

test: setup lint types test-host test-kernel

run: setup
	scripts/demo

bench: setup
	scripts/bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
