"""Review s38d: attacks on the gate's strict request head (4111d82), the key-epoch hash check (389b7e2)
and the lazy re-exports (0975a7e). The refusals held (no refused method reached Anvil by any head or body
tried). Findings 1-3 (a refused head is answered with a dropped connection; a revert sent with
`Expect: 100-continue` or `Connection: close` is not followed by the base fee being set again, so the
journal does not replay) are fixed: a 400 with its reason, and a revert sent to the node with the gate's own
head (keep-alive, no `Expect`), the client's connection closed after the answer if it asked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.node import start_anvil, stop_anvil
from chain.rpc import RpcClient
from core.config import Settings, load_settings
from tests.chain.gate_support import bare_chain, raw_exchange
from tests.conftest import free_port

pytestmark = pytest.mark.chain

VICTIM = "0x00000000000000000000000000000000000000aa"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with bare_chain(Path(tmp_path_factory.mktemp("last")) / "home") as settings:
        yield settings


def _exchange(settings: Settings, raw: bytes, wait_s: float = 1.0) -> bytes:
    return raw_exchange(settings, raw, wait_s)


def test_a_malformed_head_is_answered_400(chain: Settings) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance", "params": [VICTIM, "0x1234"]}).encode()
    raw = (b"POST / HTTP/1.1\r\nHost: x\nContent-Type: application/json\nContent-Length: %d\n\n" % len(body)
           + body + b"\r\n\r\n")
    answer = _exchange(chain, raw)
    rpc = RpcClient(f"http://{chain.rpc_host}:{chain.rpc_port}", timeout_s=5.0, retries=0)
    assert int(rpc.call("eth_getBalance", [VICTIM, "latest"]), 16) == 0  # the refusal itself holds
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"malformed request head" in answer



def _raw_revert(settings: Settings, snapshot: str, extra: bytes) -> bytes:
    """`evm_revert` sent whole through the gate with the `extra` header lines."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "evm_revert", "params": [snapshot]}).encode()
    return _exchange(settings, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra
                     + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def _revert_then_replay(tmp_path: Path, extra: bytes) -> tuple[bytes, str, str]:
    """(the client's answer to a revert sent with `extra`, block 2 as served after it, block 2 as replayed)."""
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    try:
        rpc = RpcClient(f"http://{settings.rpc_host}:{settings.rpc_port}", timeout_s=5.0, retries=0)
        rpc.call("evm_mine")  # the snapshot at block 1, not the genesis
        snapshot = rpc.call("evm_snapshot")
        rpc.call("evm_mine")
        answer = _raw_revert(settings, snapshot, extra)
        assert rpc.call("eth_blockNumber") == "0x1"  # the revert reverted, whatever the client was told
        rpc.call("evm_mine")  # block 2 again
        served = rpc.call("eth_getBlockByNumber", ["0x2", False])["hash"]
        time.sleep(1.0)  # the keeper journals the new block 2
    finally:
        stop_anvil(settings)
    try:
        start_anvil(settings)  # the replay re-mines block 2 at the base fee EIP-1559 gives after block 1
        replayed = RpcClient(f"http://{settings.rpc_host}:{settings.rpc_port}", timeout_s=5.0, retries=0)
        return answer, served, replayed.call("eth_getBlockByNumber", ["0x2", False])["hash"]
    finally:
        stop_anvil(settings)


def test_a_plain_raw_revert_replays(tmp_path: Path) -> None:
    """The control for findings 2 and 3: the same raw revert without either header replays."""
    answer, served, replayed = _revert_then_replay(tmp_path, b"")
    assert b'"result":true' in answer
    assert replayed == served


def test_a_revert_sent_expecting_continue_replays(tmp_path: Path) -> None:
    answer, served, replayed = _revert_then_replay(tmp_path, b"Expect: 100-continue\r\n")
    # the gate sends a revert with its own head (no `Expect`): the client gets the final answer at once, which
    # HTTP/1.1 allows after a whole body (RFC 9110, 10.1.1)
    assert b'"result":true' in answer, answer
    assert replayed == served


def test_a_revert_sent_with_connection_close_is_answered_and_replays(tmp_path: Path) -> None:
    answer, served, replayed = _revert_then_replay(tmp_path, b"Connection: close\r\n")
    assert b'"result":true' in answer, answer
    assert replayed == served
