"""Review s39d (adversarial): the gate at 56aa298 (`chain.gate`: the first-come-first-served `_Turns`, the
bounds of `_bad_params`, HTTP/1.0 and `Expect: 100-continue`). Each finding is a test that fails on the
reviewed code, against a real Anvil through the gate.

(1) A few clients can still freeze everyone, with bounded calls. `_bad_params` bounds one `anvil_mine` to
1,000 blocks (about 1 s of Anvil's mining alone), but not how many run at once: four connections that each
send ``anvil_mine 0x3e8`` again as soon as it is answered keep Anvil mining without a pause, and the ones in
flight together take longer than the gate's 10 s control wait (measured: an ``evm_snapshot`` sent 1 s into
such a flood was refused after 10.06 s; 4,046 blocks had been mined by then). So every control call
(``evm_snapshot``, ``evm_revert``, ``evm_setAutomine``) is refused for as long as the flood goes on, and,
because turns are first come, first served, every other client's ordinary request that arrives behind a
waiting control call waits with it, up to 10 s each time (here a bystander's ``eth_blockNumber`` does not
answer within 3 s). The journal meanwhile grows by hundreds of blocks a second.

(2) One request still mines without bound: `_bad_params` checks each entry of a batch alone, and a batch of
``anvil_mine`` calls is an ordinary request (a shared turn), so a batch of fifty ``anvil_mine 0x3e8`` (a
2.7 kB body) asks for 50,000 blocks at once, and sixty-four megabytes of it for hundreds of millions: the
per-call bound of s39c finding 6 does not bound a request. While it runs (Anvil goes on even once its
client has gone), an ``evm_snapshot`` from another client is not answered within 4 s (it waits the gate's
10 s and is refused), just as with the unbounded ``anvil_mine 0xffffffff`` of s39c finding 6.

(3) On a chain just started, the first ``evm_increaseTime`` is lost: `chain.node._replay` ends every start
with ``evm_setNextBlockTimestamp`` (now, or one past the last block), and Anvil stamps the next block with
that pending timestamp whatever the clock offset says. So ``evm_increaseTime 3600`` then ``evm_mine`` right
after ``qeaims chain up`` mines a block one second after the genesis, not an hour later (measured: offset
answered 3600, block stamped genesis + 1; the next increase works, from there). A dev script (or
`qeaims.campaigns.devchain.advance_time`) that moves time first thing on a restarted chain does not move it.
Not the gate's code, but the dev use the gate must keep working.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from chain.gate import _MAX_MINED as MAX_MINED
from chain.rpc import RpcClient
from core.errors import ChainError
from tests.chain.gate_support import bare_chain

pytestmark = pytest.mark.chain


def test_a_flood_of_bounded_anvil_mine_calls_does_not_freeze_other_clients(tmp_path: Path) -> None:
    stop = threading.Event()
    snapshot: list[str] = []
    with bare_chain(tmp_path / "home") as settings:
        url = f"http://{settings.rpc_host}:{settings.rpc_port}"

        def flood() -> None:
            client = RpcClient(url, timeout_s=30.0, retries=0)
            while not stop.is_set():
                try:
                    client.call("anvil_mine", [hex(MAX_MINED)])  # the most one call may mine
                except ChainError:
                    return  # the chain was stopped under it

        def take_snapshot() -> None:
            try:
                snapshot.append(str(RpcClient(url, timeout_s=12.0, retries=0).call("evm_snapshot")))
            except ChainError as exc:
                snapshot.append(f"refused: {exc}")

        flooders = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
        for thread in flooders:
            thread.start()
        time.sleep(1.0)
        controller = threading.Thread(target=take_snapshot, daemon=True)
        controller.start()
        time.sleep(0.5)
        started = time.monotonic()
        try:
            RpcClient(url, timeout_s=15.0, retries=0).call("eth_blockNumber")
            waited: float | None = time.monotonic() - started
        except ChainError:
            waited = None  # main: it waits behind the snapshot, which waits 10 s behind the flood
        stop.set()
    for thread in [*flooders, controller]:
        thread.join(15.0)
    # the fix: mining runs alone, 256 blocks a call, first come first served, so the snapshot gets its turn
    # after the calls queued before it (the reviewed code refused it after 10 s, and the bystander behind it
    # waited as long); the bystander waits for what is queued ahead of it, about a second a mining call
    # (wanted at first: under 1 s; four connections can each queue one call, so that is not kept: see Open);
    # the most one call may mine went from 1,000 to 256 blocks for it (under load 1,000 took 2.5 s)
    assert snapshot and not snapshot[0].startswith("refused"), snapshot
    assert waited is not None and waited < 10.0, f"a bystander's eth_blockNumber waited {waited} s"


def test_a_batch_of_anvil_mine_calls_does_not_shut_out_snapshots(tmp_path: Path) -> None:
    batch = json.dumps([{"jsonrpc": "2.0", "id": n, "method": "anvil_mine", "params": ["0x3e8"]} for n in range(50)]).encode()
    request = b"POST / HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(batch)
    with bare_chain(tmp_path / "home") as settings:
        url = f"http://{settings.rpc_host}:{settings.rpc_port}"
        with socket.create_connection((settings.rpc_host, settings.rpc_port), timeout=3) as miner:
            miner.sendall(request + batch)
            time.sleep(0.5)
            started = time.monotonic()
            try:
                RpcClient(url, timeout_s=4.0, retries=0).call("evm_snapshot")
                answered: float | None = time.monotonic() - started
                refusal = ""
            except ChainError as exc:  # main: not answered within 4 s (or refused after the gate's 10 s wait)
                answered, refusal = None, str(exc)
    # wanted: the batch is refused (or bounded as a whole) and the snapshot answered at once
    assert answered is not None, f"an evm_snapshot behind one batch of anvil_mine calls: {refusal}"


@pytest.mark.xfail(strict=True, reason="review s39d finding 3: the first evm_increaseTime after a start is overridden by the replay's evm_setNextBlockTimestamp")
def test_the_first_time_increase_after_a_start_moves_the_clock(tmp_path: Path) -> None:
    with bare_chain(tmp_path / "home") as settings:
        rpc = RpcClient(f"http://{settings.rpc_host}:{settings.rpc_port}", timeout_s=5.0, retries=0)
        genesis = int(rpc.call("eth_getBlockByNumber", ["0x0", False])["timestamp"], 16)
        rpc.call("evm_increaseTime", [3600])
        rpc.call("evm_mine", [])
        stamped = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    # wanted: an hour later; main: a second or so after the genesis
    assert stamped >= genesis + 3600, f"evm_increaseTime 3600 then evm_mine: block stamped genesis + {stamped - genesis} s"
