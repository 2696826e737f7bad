"""The journal keeper: a small process beside the development Anvil that appends every new
block's raw transactions, its hash, parent hash and roots to the chain journal, each line chained
to the one before by its sha256 (see `chain/journal.py`).

Run by `chain.node.start_anvil` once the journal is replayed; stopped by `stop_anvil` with SIGTERM,
after which it journals up to the head one last time. Uses only standard `eth_*` methods to read
the chain. It also owns the chain's public port (`--listen`): Anvil listens on a private loopback
port, and the keeper's gate (`chain.gate`) splices the clients' connections to it. So clients are
served only once the replay is done and only while a keeper journals; the gate closes at SIGTERM
(before the last catch-up) and when Anvil (`--anvil-pid`) ends, and then the keeper exits too: a
new Anvil gets a new keeper. A keeper without an Anvil pid whose chain has been gone for
`--give-up-after` seconds, or whose journal's folder was removed (a benchmark's temporary chain
killed with its process), exits as well.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chain.gate import Gate
from chain.journal import ChainJournal, JournalBlock
from chain.node_proc import listening_port
from chain.rpc import RpcClient
from core.errors import ChainError, ChainNotRunning

__all__ = ["catch_up", "follow_revert", "keeper_lock_path", "main"]


def catch_up(rpc: RpcClient, journal: ChainJournal, after: int, limit: int = 200,
             live: Callable[[], bool] = lambda: True) -> int:
    """Journal blocks after `after` up to the head (at most `limit` per call); returns the last one.
    Blocks read while `live()` turned false (the gate's Anvil ended: whatever answered on its port
    since is not it) are not journaled.

    The journal follows the chain as an indexer follows a reorg (review s38, finding 1): when the
    chain's block `after` is not the journal's (a client's `evm_revert`, then new blocks), the journal
    is cut back to the last block both share (`_follow_reorg`) before the new ones are appended, so
    it always replays to the chain clients see."""
    tail = journal.last() if after > 0 else None
    if tail is not None and tail.number == after:
        head_hex, mine = rpc.batch([("eth_blockNumber", []), ("eth_getBlockByNumber", [hex(after), False])])
        head = int(head_hex, 16)
        if not isinstance(mine, dict) or str(mine.get("hash", "")).lower() != tail.hash.lower():
            if not live():
                return after
            after = _follow_reorg(rpc, journal, after, min(head, after))
            tail = journal.last()
    else:
        head = int(rpc.call("eth_blockNumber"), 16)
    if head <= after:
        return after
    numbers = list(range(after + 1, min(head, after + limit) + 1))
    fetched = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    blocks: list[dict[str, Any]] = []
    parent = tail.hash if tail is not None else None
    for block in fetched:  # the chain may have moved since: journal only blocks that link to the journal
        if not isinstance(block, dict) or (parent is not None and str(block["parentHash"]).lower() != parent.lower()):
            break
        blocks.append(block)
        parent = str(block["hash"])
    if not blocks:
        return after
    hashes = [h for block in blocks for h in block["transactions"]]
    raws = rpc.batch([("eth_getRawTransactionByHash", [h]) for h in hashes]) if hashes else []
    raw_by_hash = dict(zip(hashes, raws, strict=True))
    if not live():
        return after
    journal.append([JournalBlock.from_rpc(b, tuple(raw_by_hash[h] for h in b["transactions"])) for b in blocks])
    return int(blocks[-1]["number"], 16)


def _follow_reorg(rpc: RpcClient, journal: ChainJournal, after: int, top: int) -> int:
    """Cut the journal back to the newest block the chain still has (0: the genesis); returns it.
    Logs one structured ``journal-reorg`` line (from, to, how many blocks were dropped).

    Only a fork is followed: a chain that is a prefix of the journal (its blocks 1..`top` all the
    journal's) cuts nothing, so a stop journaling beside a half-replayed Anvil never loses blocks. A
    revert with no block after it is such a prefix too: the gate reports it (`follow_revert`)."""
    ancestor = _common_ancestor(rpc, journal, top)
    if ancestor == top:  # the chain is behind the journal, not on another fork (a revert with no block mined
        return after     # since, or an Anvil a killed start left half-replayed): nothing of the journal is wrong
    return _cut(journal, after, ancestor, "journal-reorg")


def follow_revert(rpc: RpcClient, journal: ChainJournal, after: int, head: int) -> int:
    """After a client's `evm_revert` that the gate saw succeed (the chain's head is now `head`): cut
    the journal back to the newest block the reverted chain shares with it; returns the new last block.
    Logs one ``journal-revert`` line when blocks are dropped.

    Why not wait for `catch_up`: a chain *behind* the journal is no evidence of a revert (a
    half-replayed Anvil looks the same), so `catch_up` cuts only when a new block forks off; a revert
    with no block after it then stayed in the journal, and the next `chain up` replayed the reverted
    blocks that every client had seen undone (review s38c finding 2). The gate holds the client's
    answer until this returns, so a revert anyone was told of is journaled. Compared by hash from
    min(head, after) down, not by height alone: a chain whose head is at or above the journal's tip
    may still have left it (review s39 finding 3)."""
    ancestor = _common_ancestor(rpc, journal, min(head, after))
    if ancestor == after:
        return after
    return _cut(journal, after, ancestor, "journal-revert")


def _common_ancestor(rpc: RpcClient, journal: ChainJournal, top: int) -> int:
    """The newest block at or below `top` whose hash on the chain is the journal's (0: the genesis)."""
    journaled = {block.number: block.hash.lower() for block in journal.blocks()}
    ancestor = 0
    high = top
    while high > 0 and ancestor == 0:
        low = max(1, high - 99)
        numbers = list(range(high, low - 1, -1))
        chain = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        for number, block in zip(numbers, chain, strict=True):
            if isinstance(block, dict) and str(block.get("hash", "")).lower() == journaled.get(number):
                ancestor = number
                break
        high = low - 1
    return ancestor


def _cut(journal: ChainJournal, after: int, ancestor: int, event: str) -> int:
    """Drop the journal's blocks after `ancestor` (crash-safe, `ChainJournal.truncate_after`) and log it."""
    dropped = journal.truncate_after(ancestor)
    print(json.dumps({"event": event, "journal": str(journal.path), "from": after, "to": ancestor,
                      "dropped": dropped}), file=sys.stderr, flush=True)
    return ancestor


def keeper_lock_path(journal: Path) -> Path:
    """The lock a journal's one writer holds (a keeper, or `stop_anvil` journaling after a dead one)."""
    return journal.with_name(journal.name + ".keeper.lock")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="journal the development chain's blocks")
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--rpc-url", required=True)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--give-up-after", type=float, default=300.0)
    parser.add_argument("--listen", help="HOST:PORT: the chain's public port, gated to --rpc-url")
    parser.add_argument("--anvil-pid", type=int, help="the Anvil the gate serves: the keeper ends with it")
    args = parser.parse_args(argv)
    # one keeper a journal: a second one (a start racing another, a keeper whose pid file was lost)
    # would append the same blocks again and break the journal's chain; the lock dies with its holder
    try:
        lock = open(keeper_lock_path(args.journal), "a")  # noqa: SIM115 - held for life
    except FileNotFoundError:  # the chain's folder was removed (a benchmark's temporary chain): nothing to keep
        print(f"keeper: the folder of {args.journal} is gone; stopping", file=sys.stderr, flush=True)
        return 0
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"keeper: another keeper journals {args.journal}; exiting", file=sys.stderr, flush=True)
        return 0
    journal = ChainJournal(args.journal)
    journal.repair()
    rpc = RpcClient(args.rpc_url, timeout_s=10.0, retries=0)
    stopping = False
    wake = threading.Event()  # a stop, or Anvil's end: no need to sleep out the interval

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        wake.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    tip = _Tip(journal.last_block())

    def _reverted(head: int, head_hash: str) -> None:  # on the gate's worker thread, the client's answer held
        with tip.lock:  # never while a catch-up is between reading blocks and appending them
            tip.last = follow_revert(RpcClient(args.rpc_url, timeout_s=10.0, retries=0), journal, tip.last, head)

    pinned, gate = _pinned_gate(args, wake, _reverted)
    if not pinned:
        return 2
    with contextlib.suppress(ChainError):  # what the chain has beyond the journal, journaled before anyone is served
        while (newest := catch_up(rpc, journal, tip.last)) != tip.last:
            tip.last = newest
    if gate is not None and not stopping:  # told to stop during the catch-up: never serve anyone
        try:
            gate.open()
        except OSError as exc:
            print(f"keeper: cannot open the chain's port {args.listen}: {exc}", file=sys.stderr, flush=True)
            return 2
        print(f"keeper: serving {args.listen} through the gate to {args.rpc_url}", file=sys.stderr, flush=True)
    gone_since: float | None = None
    while True:
        if gate is not None and stopping:
            gate.close()  # nobody is served past the last catch-up
        if gate is not None and gate.target_gone.is_set():
            print(f"keeper: Anvil (pid {args.anvil_pid}) ended; the gate is closed; stopping", file=sys.stderr, flush=True)
            return 0
        if gate is not None and gate.closed and not stopping:  # the gate failed: `start_anvil` starts a new keeper
            print(f"keeper: the gate on {args.listen} stopped serving; stopping", file=sys.stderr, flush=True)
            return 1
        try:
            with tip.lock:
                newest = catch_up(rpc, journal, tip.last, live=lambda: gate is None or not gate.target_gone.is_set())
                caught_up = newest == tip.last
                tip.last, gone_since = newest, None
        except ChainNotRunning:
            if stopping:
                return 0
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > args.give_up_after or not args.journal.parent.exists():
                print(f"keeper: the chain at {args.rpc_url} is gone; stopping", file=sys.stderr, flush=True)
                return 0
            caught_up = True
        except ChainError as exc:  # a node hiccup: log it and try again
            print(f"keeper: {exc}", file=sys.stderr, flush=True)
            caught_up = True
        if stopping and caught_up:
            return 0
        if caught_up:
            wake.wait(args.interval)


@dataclass
class _Tip:
    """The journal's last block, shared by the keeper's loop and the gate's revert reports."""

    last: int
    lock: threading.Lock = field(default_factory=threading.Lock)


def _pinned_gate(args: argparse.Namespace, wake: threading.Event,
                 on_revert: Callable[[int, str], None]) -> tuple[bool, Gate | None]:
    """The gate on `--listen` to `--rpc-url`'s port (None without `--listen`), its Anvil pinned and
    checked to be the process that owns that port; not pinned (said why on stderr) otherwise."""
    if args.listen is None:
        return True, None
    if args.anvil_pid is None:
        print("keeper: --listen needs --anvil-pid", file=sys.stderr, flush=True)
        return False, None
    host, _, port = args.listen.rpartition(":")
    target = urlsplit(args.rpc_url)
    gate = Gate((host.strip("[]"), int(port)), (target.hostname or "127.0.0.1", target.port or 80), args.anvil_pid,
                on_gone=wake.set, on_revert=on_revert)
    try:
        gate.pin()
    except ProcessLookupError:
        print(f"keeper: Anvil (pid {args.anvil_pid}) is gone", file=sys.stderr, flush=True)
        return False, None
    if listening_port(args.anvil_pid) != gate.target[1]:
        print(f"keeper: process {args.anvil_pid} is not the Anvil listening on {args.rpc_url}; not opening "
              f"{args.listen}", file=sys.stderr, flush=True)
        return False, None
    return True, gate


if __name__ == "__main__":
    sys.exit(main())
