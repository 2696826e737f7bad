# QEAIMS: the two commands are `make demo` and `make test`. Both install what is missing first:
# the Python side into .venv/ (pinned in pyproject.toml), the npm side (Foundry, solc-js,
# OpenZeppelin, forge-std) into node_modules/ (pinned in package-lock.json).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FORGE  := node_modules/.bin/forge

.PHONY: install demo test test-contracts test-python slither bench-ledger clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

build/.built: install $(wildcard contracts/*.sol contracts/*/*.sol) foundry.toml
	$(FORGE) build --skip test --skip script
	touch $@

demo: install build/.built
	$(BIN)/qeaims demo

test: test-contracts test-python

test-contracts: install
	$(FORGE) test

test-python: install build/.built
	$(BIN)/pytest

slither: install
	$(BIN)/pip install --quiet ".[audit]"
	$(BIN)/slither . --filter-paths "node_modules|tests" --exclude-dependencies

bench-ledger: install build/.built
	$(BIN)/qeaims bench ledger --seconds 60

clean:
	rm -rf build crytic-export .pytest_cache
