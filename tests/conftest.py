"""Fixtures that start a real Anvil (no mocked chain) and deploy the development consortium.

Each chain lives in its own temporary QEAIMS_HOME on a free loopback port. The session chain is
shared by tests that only add history; tests that kill or reset the chain get their own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain.client import ChainClient
from chain.connect import connect
from chain.deploy import deploy_dev_consortium
from chain.manifest import Deployment
from chain.node import start_anvil, stop_anvil
from core.config import Settings, load_settings

FAST_SCRYPT_N = 1024  # keystores in tests: real scrypt, cheap parameters


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Chain:
    settings: Settings
    client: ChainClient
    deployment: Deployment

    @property
    def env(self) -> dict[str, str]:
        return cli_env(self.settings)

    def reconnect(self) -> None:
        self.client, self.deployment = connect(self.settings)


def cli_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "QEAIMS_HOME": str(settings.home),
        "QEAIMS_RPC_PORT": str(settings.rpc_port),
        "QEAIMS_SCRYPT_N": str(settings.scrypt_n),
        "COLUMNS": "200",
    })
    env.pop("QEAIMS_PASSPHRASE", None)
    return env


def run_cli(args: list[str], env: dict[str, str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qeaims", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def make_chain(home: Path, **overrides: object) -> Chain:
    settings = load_settings(home=home, rpc_port=free_port(), scrypt_n=FAST_SCRYPT_N, **overrides)
    start_anvil(settings)
    client, deployment = deploy_dev_consortium(settings)
    return Chain(settings, client, deployment)


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    c = make_chain(tmp_path_factory.mktemp("qeaims-session"))
    yield c
    stop_anvil(c.settings)


@pytest.fixture
def fresh_chain(tmp_path: Path) -> Iterator[Chain]:
    c = make_chain(tmp_path / "home")
    yield c
    stop_anvil(c.settings)
