# QEAIMS: the two commands are `make demo` and `make test`. Both install what is missing first:
# the Python side into .venv/ (pinned in pyproject.toml), the npm side (Foundry, solc-js,
# OpenZeppelin, forge-std) into node_modules/ (pinned in package-lock.json).
# While editing: `make check` (lint, types, layers, unit tests; under 2 minutes). The long campaigns
# stay out of `make test`: `make test-slow` (the pytest `slow` suites), `make invariants` (deep forge profile).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FORGE  := node_modules/.bin/forge
# pytest-xdist workers: each gets its own Anvil, ports and tmp dirs (tests/conftest.py)
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

.PHONY: install system demo test check lint test-contracts test-python test-unit test-slow test-second-client invariants slither bench-ledger bench-evm-clients clean

install: $(VENV)/.installed node_modules/.installed system

# Debian packages the city runs where it can: Mosquitto, the real MQTT broker (`qeaims broker` falls back
# to the embedded one without it), and Chromium, the real browser the dashboard's tests drive (Playwright
# with Debian's executable: Playwright's own browser download is not reachable here). Installed only where missing, and only where apt-get is allowed to
# (root); elsewhere a note says how, and nothing fails.
system:
	@if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing mosquitto (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto >/dev/null; \
	else echo "note: Mosquitto is not installed; the city uses its embedded broker (sudo apt-get install mosquitto)"; fi
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt-get), for the dashboard's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: Chromium is not installed; the browser tests will fail (sudo apt-get install chromium)"; fi

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

# The city on one machine (chain, consortium, six twins, 4 oracles a sector, the controller), then the
# storm-day scenario with its live view and KPI report. The city keeps running afterwards so that
# `qeaims audit events` / `qeaims audit verify` work on the result; `qeaims down` stops it.
# QEAIMS_SPEED sets the twins' speed (simulated seconds per second); 15 is what two cores keep up with
# (qeaims/commands/up_cmd.py: CITY_SPEED says why).
QEAIMS_SPEED ?= 15
# the audit and operations API and the dashboard (docs/api.md), served by `qeaims up`
QEAIMS_API_PORT ?= 8080
demo: install build/.built
	$(BIN)/qeaims up --speed $(QEAIMS_SPEED) --api-port $(QEAIMS_API_PORT)
	$(BIN)/qeaims scenario run storm-day
	@echo "The city is still running: try 'qeaims audit verify', 'qeaims ps'; stop it with 'qeaims down'."
	@echo "Dashboard: http://127.0.0.1:$(QEAIMS_API_PORT)/ (sign in with a token from .qeaims/api/dev-tokens.json; 'qeaims ps' shows both again)."

test: lint slither test-contracts test-python

# lint, types, the layer contracts and the unit tests (no chain, no processes): the quick loop
check: lint test-unit

lint: install
	$(BIN)/ruff check api bus core chain links qeaims keys sectors oracles controller vaults intel gateway tests
	$(BIN)/mypy --strict api bus core chain links qeaims keys sectors oracles controller vaults intel gateway
	$(BIN)/lint-imports
	$(BIN)/python scripts/import_cycles.py

# The invariant suites append their per-action call counts to build/invariant-metrics/ (summed by
# scripts/invariant_metrics.py); FOUNDRY_PROFILE=deep runs >= 100,000 calls per invariant.
test-contracts: install
	rm -rf build/invariant-metrics && mkdir -p build/invariant-metrics
	$(FORGE) test

# Every Python test but the `slow` campaigns (tests/conftest.py skips them unless QEAIMS_SLOW=1).
test-python: install build/.built
	$(PYTEST)

test-unit: install
	$(PYTEST) -m unit

# The pytest campaigns kept out of `make test` (models trained on the expensive twins, whole-sector
# attribution matrices): minutes each.
test-slow: install build/.built
	QEAIMS_SLOW=1 $(PYTEST) -m slow

# The deep invariant profile (>= 100,000 handler calls per invariant), then the per-action call counts.
invariants: install
	rm -rf build/invariant-metrics && mkdir -p build/invariant-metrics
	FOUNDRY_PROFILE=deep $(FORGE) test --match-test invariant
	$(BIN)/python scripts/invariant_metrics.py

# Slither pins web3<8, so it lives in its own venv; FOUNDRY_OUT keeps its forced rebuild away from build/out.
# The gate: any High or Medium finding fails (--fail-medium); Low and Informational ones are listed with
# their dispositions in docs/SLITHER.md. About 15 s, so `make test` runs it. JSON: build/slither/report.json.
slither: install
	test -x .venv-slither/bin/slither || ($(PYTHON) -m venv .venv-slither && .venv-slither/bin/pip install --quiet slither-analyzer==0.11.6)
	mkdir -p build/slither && rm -f build/slither/report.json
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" FOUNDRY_OUT=build/slither/out FOUNDRY_CACHE_PATH=build/slither/cache \
	  .venv-slither/bin/slither . --filter-paths "node_modules|tests" --fail-medium --json build/slither/report.json

bench-ledger: install build/.built
	$(BIN)/qeaims bench ledger --seconds 60

# The production path on a second EVM client, Hardhat's node mining every 500 ms (docs/evm-clients.md);
# part of `make test` too. QEAIMS_SECOND_CLIENT_BLOCK_MS=1000 runs it at the bench's block time.
test-second-client: install build/.built
	$(BIN)/pytest -n 0 tests/second_client

# Isolation latency (propose -> isolated) on Hardhat and Anvil at a 1 s block time, and on instant Anvil:
# about 2.5 minutes.
bench-evm-clients: install build/.built
	$(BIN)/python scripts/evm_client_bench.py --runs 10 --block-ms 1000

clean:
	rm -rf build crytic-export .pytest_cache
