"""Anvil's spilled history lives and dies with its chain: no `anvil-state-*` piles up in the home folder.

Anvil keeps recent states in memory and writes older ones to disk; by default under
``~/.foundry/anvil/tmp``, one directory per process, never removed (49 GB had piled up on a
development machine). `chain.node` points it at the chain's own directory and clears it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from chain import node
from chain.journal import ChainJournal
from chain.node import _pid_file, _read_pid, chain_status, start_anvil, stop_anvil
from chain.rpc import RpcClient
from core.config import Settings, load_settings
from core.errors import ChainError, ChainStartFailed
from tests.conftest import free_port

DEFAULT_TMP = Path.home() / ".foundry" / "anvil" / "tmp"
DEV_FROM = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
DEV_TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
GENESIS_BALANCE = 1_000_000 * 10**18


def _default_dirs() -> set[str]:
    return {p.name for p in DEFAULT_TMP.glob("anvil-state-*")} if DEFAULT_TMP.exists() else set()


def test_spilled_states_stay_under_the_chain_directory_and_go_with_a_clean_stop(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    before = _default_dirs()
    start_anvil(settings)
    try:
        rpc = RpcClient(settings.rpc_url)
        for _ in range(12):  # 3,072 blocks, past what Anvil keeps in memory (the gate takes 256 a call)
            rpc.call("anvil_mine", [hex(256)])
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


# The adversarial review of the change (findings F1, F3, F4, F6), each failing before its fix.


def _balance_at(rpc: RpcClient, block: int) -> int:
    return int(rpc.call("eth_getBalance", [DEV_TO, hex(block)]), 16)


def test_a_second_start_never_lets_stop_anvil_clear_the_states_of_a_live_anvil(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    pid = int((settings.chain_dir / "anvil.pid").read_text())
    try:
        rpc = RpcClient(settings.rpc_url)
        rpc.call("eth_sendTransaction", [{"from": DEV_FROM, "to": DEV_TO, "value": "0x7"}])  # block 1
        for _ in range(4):  # 1,000 blocks (the gate takes 256 a call): block 1's state now lives only in anvil-states
            rpc.call("anvil_mine", [hex(250)])
        os.kill(pid, signal.SIGSTOP)  # a moment without answers (suspend, swap, a stall)...
        while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "T":
            time.sleep(0.01)  # every thread of it stopped (a signal to a process group takes a moment)
        try:
            with pytest.raises(ChainStartFailed):
                start_anvil(settings, wait_s=5)  # ...and `qeaims chain up` once more
        finally:
            os.kill(pid, signal.SIGCONT)
        assert _read_pid(settings) == pid  # the refused start left the pid file alone
        assert _balance_at(rpc, 1) == GENESIS_BALANCE + 7  # and the live Anvil's history
        stop_anvil(settings)  # `qeaims chain down`
        try:
            still_answers = rpc.call("eth_blockNumber", []) is not None
        except ChainError:
            still_answers = False
        if still_answers:  # whatever stop_anvil did, a live Anvil keeps its history
            assert _balance_at(rpc, 1) == GENESIS_BALANCE + 7
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stop_anvil(settings)


def test_a_pid_file_whose_number_was_reused_does_not_keep_a_crashed_chains_states(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    leftover = settings.chain_dir / "anvil-states" / "anvil-state-06-12-2026-00-00AbCdEf"
    leftover.mkdir(parents=True)
    (leftover / "0x00.json").write_text("{}")
    other = subprocess.Popen(["sleep", "60"])  # after a reboot the old number belongs to someone else
    (settings.chain_dir / "anvil.pid").write_text(f"{other.pid}\n")
    try:
        start_anvil(settings)
        try:
            assert not leftover.exists()
        finally:
            stop_anvil(settings)
    finally:
        other.kill()
        other.wait()


def test_start_anvil_does_not_kill_a_process_that_reuses_the_keepers_old_pid(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    settings.chain_dir.mkdir(parents=True)
    other = subprocess.Popen(["sleep", "60"])
    (settings.chain_dir / "keeper.pid").write_text(f"{other.pid}\n")
    try:
        start_anvil(settings)
        stop_anvil(settings)
        assert other.poll() is None, "start_anvil SIGKILLed an unrelated process"
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_a_symlinked_state_cache_is_not_left_growing(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings.chain_dir.mkdir(parents=True)
    (settings.chain_dir / "anvil-states").symlink_to(elsewhere)
    start_anvil(settings)
    try:
        rpc = RpcClient(settings.rpc_url)
        for _ in range(4):  # 700 blocks (the gate takes 256 a call)
            rpc.call("anvil_mine", [hex(175)])
        rpc.call("eth_sendTransaction", [{"from": DEV_FROM, "to": DEV_TO, "value": "0x1"}])
    finally:
        stop_anvil(settings)
    assert not any(elsewhere.glob("anvil-state-*/*.json"))


def test_two_starts_at_once_replay_the_journal_once_and_both_find_the_chain(tmp_path: Path) -> None:
    """F5: two `qeaims chain up` on a stopped chain raced through the journal replay, and each called the
    other's blocks tampering. Starts now take turns: the second finds the first's chain running."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support import wait_journaled

    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    rpc = RpcClient(settings.rpc_url)
    for _ in range(40):
        rpc.call("eth_sendTransaction", [{"from": DEV_FROM, "to": DEV_TO, "value": "0x1"}])
    wait_journaled(settings)
    stop_anvil(settings)
    try:
        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(lambda _: start_anvil(settings), range(2)))
        assert all(s.running for s in statuses) and statuses[0].pid == statuses[1].pid
        assert _balance_at(rpc, 40) == GENESIS_BALANCE + 40
    finally:
        stop_anvil(settings)


# The second review (of the fixes above): A1 a second keeper during a replay, A2 another chain's Anvil
# taken for ours, A3 a stall between two status calls.


def _keepers(settings: Settings) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"chain.keeper --journal {settings.chain_dir}/"], check=False,
                         capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


# A1 -------------------------------------------------------------------------------------------------
def test_a_second_chain_up_during_the_replay_never_starts_a_second_keeper(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    rpc = RpcClient(settings.rpc_url)
    for _ in range(300):
        rpc.call("evm_mine", [])
    time.sleep(1.5)
    stop_anvil(settings)
    first = threading.Thread(target=start_anvil, args=(settings,))
    try:
        first.start()
        while not chain_status(settings).running:  # a second `qeaims chain up` as soon as the chain answers
            time.sleep(0.02)
        start_anvil(settings)
        first.join()
        assert len(_keepers(settings)) == 1
        for _ in range(10):
            rpc.call("evm_mine", [])
        time.sleep(1.5)
        ChainJournal(settings.chain_dir / "journal.jsonl").verify()  # never JournalBroken
    finally:
        first.join()
        stop_anvil(settings)
        for pid in _keepers(settings):
            subprocess.run(["kill", str(pid)], check=False)


# A2 -------------------------------------------------------------------------------------------------
def test_a_stale_pid_file_naming_another_chains_anvil_stops_nothing(tmp_path: Path) -> None:
    mine = load_settings(home=tmp_path / "a", rpc_port=free_port())
    other = load_settings(home=tmp_path / "b", rpc_port=free_port())
    start_anvil(other)
    try:
        mine.chain_dir.mkdir(parents=True)
        _pid_file(mine).write_text(f"{_read_pid(other)}\n")  # after a reboot the number is another chain's Anvil
        assert chain_status(mine).pid is None
        assert stop_anvil(mine) is False
        assert chain_status(other).running
    finally:
        stop_anvil(other)


# A3 -------------------------------------------------------------------------------------------------
def test_a_chain_that_stalls_between_two_status_calls_is_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    monkeypatch.setattr(node, "rpc_block_number", lambda url, timeout=2.0: 5)  # answered...

    def stalled(*_: object) -> object:
        raise TimeoutError("timed out")  # ...then stopped answering (SIGSTOP, swap, overload)

    monkeypatch.setattr(node, "_rpc", stalled)
    status = chain_status(settings)  # today: TimeoutError escapes (and `qeaims chain up/status` print a traceback)
    assert status.chain_id is None
