"""Review s39b (adversarial): the gate's revert alone (81be28f, `chain.gate._revert` and `_Turns`). Each
finding is a test that failed on the reviewed code, against a real Anvil through the gate; all five are
fixed (at the end of this docstring).

(1) A revert to a snapshot that an earlier revert made stale (taken on blocks that revert dropped) is
answered with an error, but Anvil 1.7.1 has already set its head back to the snapshot's block, which it no
longer has: the chain's head stands above blocks that are gone (``eth_getBlockByNumber`` answers null).
Every block mined after it hangs off that gap, so the keeper, which journals only blocks that link to its
last one, never journals again; a restart loses everything mined since. One client, no race: the gate
forwards any revert whose snapshot Anvil knows, and looks at the chain only when the answer is ``true``.
When the stale snapshot's block is below the head, Anvil answers ``false`` ("nothing reverted") yet drops the
blocks above it and keeps their state: a payment's block is gone while its nonce stays spent, the next
transaction's block cannot be replayed, and the next start refuses the journal (`JournalBroken`).

(2) and (3) share a cause: the gate holds its turn (`_Turns`) while it writes the answer to the client, not
only while the node works. A client that does not read its answers (a stopped process, a full receive
buffer) keeps the turn for as long as it stays connected. (2) Held by a revert (``alone``), every other
client of the chain hangs with no time limit: ``shared`` waits for ever. (3) Held by an ordinary request
whose answer is large (``shared``), every revert of every other client waits its 10 s and is refused, and
for those 10 s every other request waits behind it. Both are new with 81be28f: on b459c70 (before the turns)
the tests of (2) and (3) pass, a client that did not read stalling only itself; (1) fails there too.

(4) The rotation lock's hardening (23c1184, ``O_NOFOLLOW``) refuses a symbolic link planted as the lock, but
a hard link to the keystore planted there is opened as the lock itself: the lock's pid write (truncate, then
the pid) replaces the keystore as the symlink did. No chain; kept here to keep the review in one file.

(5) The revert's pool check (wait while automined transactions wait for their blocks) is skipped when automine
is off, but a block automine has started is still mined: ``evm_setAutomine true`` mines the pool's
transactions after it answers, so ``evm_setAutomine true`` then ``false`` then ``evm_revert`` (one client, in
order) reverts while Anvil mines. Anvil 1.7.1 then has the new block above a missing one, as in review s39
finding 2: the journal stops for good and a restart loses everything after it.

Fixed (`chain.gate`): the gate keeps the snapshots taken through it (id -> the block they were taken at) and
forgets a reverted one with every later one, as Anvil does; a revert to a snapshot it does not know is
answered false without reaching Anvil, and one whose block a revert has dropped since is refused (1). Every
answer is read whole under its turn and written to the client after the turn is given back (2, 3). The lock
file must be a regular file with one link (4). `evm_snapshot`, `evm_setAutomine` and `evm_setIntervalMining`
run with the node alone as `evm_revert` does, each sent alone, and switching automine on returns only once
the pool it mines is mined (5).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.journal import JournalBroken
from chain.node import chain_status, start_anvil, stop_anvil
from chain.rpc import RpcClient, RpcError
from core.config import Settings
from core.errors import ChainError
from keys.errors import KeystoreError
from keys.rotating import rotation_lock, rotation_lock_path
from tests.chain.gate_support import bare_chain, gate_rpc
from tests.support import wait_journaled

pytestmark = pytest.mark.chain

VICTIM = "0x00000000000000000000000000000000000000bb"


def _hashes(rpc: RpcClient) -> list[str | None]:
    """Every block's hash up to the head (None: a block the node says it does not have)."""
    head = int(rpc.call("eth_blockNumber"), 16)
    return [b["hash"] if b else None for b in rpc.batch([("eth_getBlockByNumber", [hex(n), False])
                                                         for n in range(head + 1)])]


def _post(body: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body


@contextlib.contextmanager
def _not_reading(settings: Settings, raw: bytes) -> Iterator[None]:
    """A client that sends `raw` and then reads nothing (a small receive buffer: the kernel soon stops
    taking its answers), connected until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((settings.rpc_host, settings.rpc_port))
        sock.sendall(raw)
        time.sleep(1.0)  # the gate has read it, forwarded it and is writing the answers
        yield
    finally:
        sock.close()


def _quick(settings: Settings) -> RpcClient:
    """A client that gives up after 3 s (a chain that answers nobody for longer looks dead to it)."""
    return RpcClient(f"http://{settings.rpc_host}:{settings.rpc_port}", timeout_s=3.0, retries=0)


def test_a_revert_to_a_stale_snapshot_keeps_the_chain_journaled(tmp_path: Path) -> None:
    with bare_chain(tmp_path / "home") as settings:
        rpc = gate_rpc(settings)
        sender = rpc.call("eth_accounts")[0]
        rpc.call("evm_mine")
        early = rpc.call("evm_snapshot")
        for _ in range(3):
            rpc.call("evm_mine")
        late = rpc.call("evm_snapshot")  # taken at block 4, which the next revert drops
        assert rpc.call("evm_revert", [early]) is True
        with contextlib.suppress(RpcError):  # main: "Resource not found", but Anvil's head is already moved
            rpc.call("evm_revert", [late])
        rpc.call("eth_sendTransaction", [{"from": sender, "to": VICTIM, "value": "0x7"}])  # a client's payment after it
        served = _hashes(rpc)
        try:
            journaled = wait_journaled(settings, timeout_s=3.0)
        except AssertionError:
            journaled = chain_status(settings).journaled_block
        holes = [n for n, h in enumerate(served) if h is None]
        # wanted: the chain clients are served is whole and journaled (so a restart brings the payment back);
        # main: blocks 2-4 are gone below the head, the payment's block hangs off them and is never journaled
        assert not holes and journaled == len(served) - 1, (
            f"the chain's head is {len(served) - 1} with blocks {holes} missing; the journal is stuck at {journaled}")
    start_anvil(settings)
    try:
        assert _hashes(gate_rpc(settings)) == served
        assert int(gate_rpc(settings).call("eth_getBalance", [VICTIM, "latest"]), 16) == 7
    finally:
        stop_anvil(settings)


def test_a_revert_to_a_stale_snapshot_answered_false_leaves_a_chain_that_replays(tmp_path: Path) -> None:
    with bare_chain(tmp_path / "home") as settings:
        rpc = gate_rpc(settings)
        sender = rpc.call("eth_accounts")[0]
        rpc.call("evm_mine")
        early = rpc.call("evm_snapshot")
        rpc.call("evm_mine")
        rpc.call("evm_mine")
        late = rpc.call("evm_snapshot")  # taken at block 3, which the next revert drops
        assert rpc.call("evm_revert", [early]) is True
        rpc.call("evm_mine")
        rpc.call("evm_mine")
        rpc.call("eth_sendTransaction", [{"from": sender, "to": VICTIM, "value": "0x1"}])  # block 4, the sender's nonce 0
        wait_journaled(settings)
        with contextlib.suppress(RpcError):  # main: false ("nothing reverted"), yet block 4 is gone and its nonce spent
            rpc.call("evm_revert", [late])
        rpc.call("eth_sendTransaction", [{"from": sender, "to": VICTIM, "value": "0x2"}])  # nonce 1 on main
        served = _hashes(rpc)
        balance = rpc.call("eth_getBalance", [VICTIM, "latest"])
        wait_journaled(settings)
    try:
        start_anvil(settings)
    except JournalBroken as exc:
        pytest.fail(f"the chain clients were served does not start again: {exc}")
    try:
        assert _hashes(gate_rpc(settings)) == served
        assert gate_rpc(settings).call("eth_getBalance", [VICTIM, "latest"]) == balance
    finally:
        stop_anvil(settings)


def test_a_client_that_does_not_read_its_revert_answer_does_not_freeze_the_chain(tmp_path: Path) -> None:
    with bare_chain(tmp_path / "home") as settings:
        gate_rpc(settings).call("evm_mine")
        # reverts to a snapshot nobody took (each answered false: nothing changes), each answer ~1.9 MB (Anvil
        # echoes the id; its body limit is 2 MiB): more than the kernel's buffers take for a client not reading
        revert = json.dumps({"jsonrpc": "2.0", "id": "x" * 1_900_000, "method": "evm_revert", "params": ["0xdead"]})
        with _not_reading(settings, _post(revert.encode()) * 5):
            start = time.monotonic()
            try:
                _quick(settings).call("eth_blockNumber")
            except ChainError as exc:
                pytest.fail(f"another client's eth_blockNumber got no answer in {time.monotonic() - start:.1f} s "
                            f"while a client that reads nothing has a revert in the gate: {exc}")


def test_a_client_that_does_not_read_a_large_answer_does_not_block_reverts(tmp_path: Path) -> None:
    with bare_chain(tmp_path / "home") as settings:
        rpc = gate_rpc(settings)
        rpc.call("evm_mine")
        snapshot = rpc.call("evm_snapshot")
        rpc.call("evm_mine")
        # one ordinary read of ~10 MB (a batch of full blocks; a big eth_getLogs does the same) to a client
        # that then stops reading (a debugger's breakpoint, a stopped process)
        batch = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_getBlockByNumber", "params": ["0x0", True]}
                            for i in range(10_000)])
        with _not_reading(settings, _post(batch.encode())):
            start = time.monotonic()
            try:
                reverted = _quick(settings).call("evm_revert", [snapshot])
            except ChainError as exc:
                pytest.fail(f"another client's evm_revert got no answer in {time.monotonic() - start:.1f} s (main: "
                            f"refused after 10 s, every other client waiting with it): {exc}")
            assert reverted is True


def test_a_hard_link_planted_as_the_rotation_lock_leaves_the_keystore_untouched(tmp_path: Path) -> None:
    keystore = tmp_path / "oracle.json"
    keystore.write_text('{"a keystore": true}\n')
    os.link(keystore, rotation_lock_path(keystore))  # the same planted link as review s39's symlink, made hard
    with contextlib.suppress(KeystoreError), rotation_lock(keystore, timeout_s=0.0):  # refusing it would be right
        pass
    assert keystore.read_text() == '{"a keystore": true}\n', f"the keystore now reads {keystore.read_text()!r}"


def test_a_revert_right_after_automine_is_switched_off_keeps_the_chain_journaled(tmp_path: Path) -> None:
    with bare_chain(tmp_path / "home") as settings:
        rpc = gate_rpc(settings)
        senders = rpc.call("eth_accounts")[:8]
        rpc.call("evm_mine")
        holes: list[int] = []
        for _ in range(3):  # the reviewed code: a hole at the first try in 4 of 4 runs
            snapshot = rpc.call("evm_snapshot")
            rpc.call("evm_mine")
            rpc.call("evm_setAutomine", [False])
            for sender in senders:  # eight creations that loop until out of gas: a block that takes ~0.2 s to mine
                rpc.call("eth_sendTransaction", [{"from": sender, "data": "0x5b600056", "gas": hex(29_000_000)}])
            rpc.call("evm_setAutomine", [True])  # Anvil mines the eight after answering
            rpc.call("evm_setAutomine", [False])  # so the gate sees automine off and skips its pool check
            assert rpc.call("evm_revert", [snapshot]) is True
            time.sleep(0.5)  # whatever was being mined has landed
            holes = [n for n, h in enumerate(_hashes(rpc)) if h is None]
            if holes:
                break
        rpc.call("evm_setAutomine", [True])
        rpc.call("evm_mine")
        served = _hashes(rpc)
        try:
            journaled = wait_journaled(settings, timeout_s=3.0)
        except AssertionError:
            journaled = chain_status(settings).journaled_block
        assert not holes and journaled == len(served) - 1, (
            f"blocks {holes} are missing below the head {len(served) - 1}; the journal is stuck at {journaled}")
    start_anvil(settings)
    try:
        assert _hashes(gate_rpc(settings)) == served
    finally:
        stop_anvil(settings)
