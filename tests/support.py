"""Small helpers shared by the chain tests (identities of the dev consortium, recorders)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from chain.deploy import dev_oracle, governor_keystore
from chain.manifest import load_deployment
from chain.outbox import EventOutbox
from chain.recorder import EventRecorder
from core.config import Settings
from core.messages import Sector
from keys.identity import HybridIdentity
from keys.keystore import load_keystore
from sectors.runner import TwinRunner

T = TypeVar("T")


def oracle(settings: Settings, sector: str, index: int) -> HybridIdentity:
    return dev_oracle(settings, sector, index)


def governor(settings: Settings, sector: str) -> HybridIdentity:
    return load_keystore(governor_keystore(settings, sector), settings.passphrase)  # one, by sector


def recorder(chain_client, settings: Settings, identity: HybridIdentity) -> EventRecorder:  # type: ignore[no-untyped-def]
    return EventRecorder(chain_client, identity, EventOutbox.for_oracle(
        settings.outbox_dir, identity.address, load_deployment(settings.manifest_path).deployment_id))


def wait_until(predicate: Callable[[], T], timeout_s: float = 10.0, *, what: str = "the condition",
               interval_s: float = 0.02) -> T:
    """Poll `predicate` until it returns something truthy (returned), for at most `timeout_s`.

    For conditions that no event announces (a row in another process's database, a pid gone); the
    short interval keeps a test from sleeping longer than the condition takes. An AssertionError
    names `what` when it never comes true."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def wait_journaled(settings: Settings, timeout_s: float = 10.0) -> int:
    """Block until the keeper has journaled the chain's head (what survives a hard kill)."""
    from chain.node import chain_status

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = chain_status(settings)
        if status.block_number is not None and status.journaled_block >= status.block_number:
            return status.journaled_block
        time.sleep(0.05)
    raise AssertionError("the chain journal did not catch up")


def isolate_by_quorum(chain, sector: str, node: str, asset: str) -> int:  # type: ignore[no-untyped-def]
    """What three oracles of `sector` do for a fault on `asset`: the first records the verdict and
    proposes the isolation of `node` citing it, two more vote; returns the executed proposal's id."""
    from chain.quorum import Action, QuorumClient
    from chain.recorder import canonical_payload
    from core.kinds import kind_by_name
    from keys.ids import event_id, to_bytes32

    voters = [oracle(chain.settings, sector, i) for i in (1, 2, 3)]
    seq = recorder(chain.client, chain.settings, voters[0]).record(
        kind_by_name("fault"), to_bytes32(node), canonical_payload({"asset": asset}))
    quorum = QuorumClient(chain.client)
    pid = quorum.propose(voters[0], Action.ISOLATE, to_bytes32(node), to_bytes32("fault"),
                         [event_id(voters[0].address, seq)])
    for voter in voters[1:]:
        quorum.vote(voter, pid)
    return pid


@contextlib.contextmanager
def running_twin(chain, sector: Sector, port: int, *, speed: float = 600.0) -> Iterator[TwinRunner]:  # type: ignore[no-untyped-def]
    """A live twin behind the broker on `port`, stepping on its own thread and obeying only
    commands whose decisions are on `chain` (`sectors.remote`), as `qeaims twin` runs it."""
    from sectors.publish import TwinPublisher
    from sectors.remote import chain_decision_check
    from sectors.runner import open_twin

    stop = threading.Event()
    with open_twin(sector) as live, TwinPublisher(live, port=port, speed=speed,
                                                  decisions=chain_decision_check(chain.client)) as host:
        thread = threading.Thread(target=host.run, args=(stop,), daemon=True)
        thread.start()
        try:
            yield live
        finally:
            stop.set()
            thread.join(10)


def run_main(capsys, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """`qeaims ARGS` in this process (`qeaims.cli.main`): (exit code, stdout, stderr)."""
    from qeaims.cli import main

    code = 0
    try:
        main(list(args))
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def stop_journaling(settings: Settings) -> None:
    """From now on blocks are mined and served but not journaled, as the blocks of the keeper's last
    interval before a hard kill are: the keeper (which also owns the chain's public port, `chain.gate`)
    is replaced by one that journals what is there now and then nothing for 60 s."""
    import os
    import signal

    from chain.node import chain_status, start_anvil

    os.kill(int((settings.chain_dir / "keeper.pid").read_text()), signal.SIGKILL)
    wait_until(lambda: not chain_status(settings).running, 10, what="the keeper's gate closed")
    start_anvil(settings.model_copy(update={"journal_interval_s": 60.0}))  # a new keeper for the same Anvil


@contextlib.contextmanager
def opened_db(path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """A connection to the SQLite file at `path` that commits and is *closed* on leaving the block.

    Why not ``with sqlite3.connect(path) as db``: that only commits; the connection stays open until the
    garbage collector frees it, at a moment nobody chose, and if it is then the file's last connection
    it checkpoints the WAL into the main file. A test that compared an index's bytes before and after a
    refused request so saw them change in 1 run of 3 (tests/api/test_events_api.py, CI of stop 37)."""
    db = sqlite3.connect(path)
    try:
        with db:
            yield db
    finally:
        db.close()


def mine_blocks(rpc, count: int) -> None:  # type: ignore[no-untyped-def]
    """`count` empty blocks through the dev chain's gate, which mines at most 256 a call (`chain.gate`): a
    bigger `anvil_mine` would hold the node long enough to shut other clients' control calls out."""
    while count > 0:
        step = min(count, 256)
        rpc.call("anvil_mine", [hex(step)])
        count -= step
