"""Anvil's spilled history lives and dies with its chain: no `anvil-state-*` piles up in the home folder.

Anvil keeps recent states in memory and writes older ones to disk; by default under
``~/.foundry/anvil/tmp``, one directory per process, never removed (49 GB had piled up on a
development machine). `chain.node` points it at the chain's own directory and clears it.
"""

from __future__ import annotations

import time
from pathlib import Path

from chain.node import start_anvil, stop_anvil
from chain.rpc import RpcClient
from core.config import load_settings
from tests.conftest import free_port

DEFAULT_TMP = Path.home() / ".foundry" / "anvil" / "tmp"
DEV_FROM = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
DEV_TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _default_dirs() -> set[str]:
    return {p.name for p in DEFAULT_TMP.glob("anvil-state-*")} if DEFAULT_TMP.exists() else set()


def test_spilled_states_stay_under_the_chain_directory_and_go_with_a_clean_stop(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    before = _default_dirs()
    start_anvil(settings)
    try:
        rpc = RpcClient(settings.rpc_url)
        rpc.call("anvil_mine", [hex(3000)])  # past what Anvil keeps in memory
        cache = settings.chain_dir / "anvil-states"
        deadline = time.monotonic() + 60
        while not any(cache.glob("anvil-state-*/*.json")):
            assert time.monotonic() < deadline, "Anvil never spilled a state to the chain's directory"
            rpc.call("eth_sendTransaction", [{"from": DEV_FROM, "to": DEV_TO, "value": "0x1"}])
        assert _default_dirs() == before  # nothing under ~/.foundry/anvil/tmp
    finally:
        stop_anvil(settings)
    assert not cache.exists()


def test_a_crashed_chains_leftover_states_are_cleared_when_it_starts_again(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    leftover = settings.chain_dir / "anvil-states" / "anvil-state-06-12-2026-00-00AbCdEf"
    leftover.mkdir(parents=True)
    (leftover / "0x00.json").write_text("{}")  # what a killed Anvil leaves behind
    start_anvil(settings)
    try:
        assert not leftover.exists()
    finally:
        stop_anvil(settings)
