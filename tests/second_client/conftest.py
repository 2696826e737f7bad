"""Fixtures for the second-client suite: a Hardhat node mining on a timer, and the development
consortium deployed on it (docs/evm-clients.md).

One node and one deployment per test process (session scope), as the Anvil `chain` fixture: the
deployment is most of the suite's time. The block time is `QEAIMS_SECOND_CLIENT_BLOCK_MS` (default
500 ms): half of the 1 s block period the bench compares at (`scripts/evm_client_bench.py`), so that the
suite stays within its CI budget; never 0 (that would be instant mining, what this suite exists to avoid).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from chain.deploy import deploy_dev_consortium
from chain.hardhat_node import HardhatConfig, HardhatNode
from core.config import load_settings
from tests.conftest import FAST_SCRYPT_N, Chain, _build_contracts_once, free_port

BLOCK_MS = int(os.environ.get("QEAIMS_SECOND_CLIENT_BLOCK_MS", "500"))
if BLOCK_MS <= 0:
    raise pytest.UsageError("QEAIMS_SECOND_CLIENT_BLOCK_MS must be > 0: the suite runs on interval mining")


@pytest.fixture(scope="session")
def hardhat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HardhatNode]:
    with HardhatNode(tmp_path_factory.mktemp("hardhat"), free_port(), HardhatConfig(block_time_ms=BLOCK_MS)) as node:
        yield node


@pytest.fixture(scope="session")
def hardhat_chain(hardhat: HardhatNode, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """The development consortium on Hardhat, deployed by the production code (`deploy_dev_consortium`)
    through `rpc_url_override`, as an operator points QEAIMS at an external node. The isolation cap is
    lifted (100 %) so that the suite can isolate several nodes of a sector without reintegrating them."""
    settings = load_settings(home=tmp_path_factory.mktemp("qeaims-hardhat"), rpc_url_override=hardhat.url,
                             scrypt_n=FAST_SCRYPT_N, isolation_cap_bps=10_000)
    _build_contracts_once()
    client, deployment = deploy_dev_consortium(settings)
    return Chain(settings, client, deployment)
