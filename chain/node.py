"""The embedded development chain: an Anvil process plus its journal keeper, under QEAIMS_HOME.

Persistence is the journal of raw signed transactions (`chain/journal.py`), not Anvil's state
dumps, which proved inconsistent after a hard kill. On start, a fresh Anvil with the journal's
genesis parameters, listening on a private loopback port, replays every journaled block with its
original timestamp; then the keeper resumes journaling and opens the chain's public port, a gate
spliced to the private one (`chain/gate.py`), so no client ever sees a half-replayed chain. The replay first checks the journal's hash chain, then compares every
re-mined block with the hash and roots the journal recorded, and refuses (a `JournalBroken`
naming the block) a journal that does not match. A hard kill loses at most the blocks mined in the last keeper interval; the
event outboxes resubmit those. This module is development tooling, so it may use Anvil's own
`evm_*`/`anvil_*` methods for the replay; production (Besu/QBFT) persists blocks itself and the
rest of the code speaks only `eth_*`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chain.journal import ChainJournal, JournalBlock, JournalBroken
from chain.keeper import catch_up, keeper_lock_path
from chain.node_proc import (
    find_anvil,
    journal_path,
    listening_port,
    listens_on,
    pid_file,
    port_listening,
    read_pid,
    spawn,
    state_cache,
    stop_process,
)
from chain.rpc import RpcClient, RpcError
from core.config import Settings, project_root
from core.errors import ChainError, ChainNotRunning, ChainStartFailed

__all__ = ["NodeStatus", "anvil_binary", "chain_status", "rpc_block_number", "start_anvil", "stop_anvil"]

# Deterministic development mnemonic (Anvil's default): its first account deploys and funds the
# development consortium. Never used outside `qeaims chain` / `qeaims deploy` on a dev chain.
DEV_MNEMONIC = "test test test test test test test test test test test junk"


@dataclass(frozen=True)
class NodeStatus:
    running: bool
    pid: int | None
    rpc_url: str
    block_number: int | None
    chain_id: int | None
    journal: Path
    journaled_block: int
    keeper_running: bool


def anvil_binary() -> Path:
    """The real Anvil binary from the npm package (the `.bin/anvil` wrapper would hide the pid)."""
    candidates = [
        project_root() / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil",
        project_root() / "node_modules" / "@foundry-rs" / "anvil-linux-arm64" / "bin" / "anvil",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ChainStartFailed("anvil is not installed: run `make install` (npm ci) in the project first")


def _rpc(url: str, method: str, params: list[object], timeout: float = 2.0) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise ChainNotRunning(f"{url} answered {method} with an error: {reply['error'].get('message')}")
    return reply["result"]


def rpc_block_number(url: str, timeout: float = 2.0) -> int:
    """Current block number, or ChainNotRunning with a plain message."""
    try:
        return int(str(_rpc(url, "eth_blockNumber", [], timeout)), 16)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        raise ChainNotRunning(f"no chain answers at {url}: start it with `qeaims chain up`") from exc


def _journal(settings: Settings) -> ChainJournal:
    return ChainJournal(journal_path(settings))


def _state_cache(settings: Settings) -> Path:
    """Where Anvil spills the historical states it no longer keeps in memory.

    Anvil's default is ``~/.foundry/anvil/tmp/anvil-state-*``, one directory per process, removed by
    neither a clean stop nor a crash: about 250 MB per 1,000 blocks, and 49 GB had piled up on a
    development machine. Kept under the chain's own directory, the states live and die with the chain
    they belong to: :func:`start_anvil` removes them before a new process starts (a replayed chain
    re-creates its history from the journal, so nothing there is needed again) and :func:`stop_anvil`
    after its process ends, each only when no Anvil of this chain runs (:func:`_clear_state_cache`).

    How far back state stays readable is Anvil's own bound, not ours: it keeps at most 3,600 states on
    disk (its ``--max-persisted-states`` default; about 0.2 MB a block), so an ``eth_call`` more than
    ~3,600 blocks behind the head fails. The audit reads contract state at the head it pinned when
    it started (``chain.audit_index``); if the chain moves 3,600 blocks on during one audit, the audit
    stops with one ``error:`` line (Anvil's "BlockOutOfRangeError") and is run again. The journal,
    not these states, is what keeps the history: a restart replays it whole."""
    return state_cache(settings)


def _clear_state_cache(settings: Settings) -> None:
    """Remove Anvil's spilled states, unless an Anvil of this chain may still use them.

    Two signs, and either keeps them: a live Anvil of this chain (by the pid file or, if that was
    removed by hand or overwritten by a start that failed, by a process with this chain's state cache:
    it is what owns the private port), or something listening on the chain's public port. A stopped
    or busy Anvil still holds its port while it answers no request: deleting its states would lose
    its history and leave it unable to spill again. A symlink or a file in the cache's place is
    removed, not followed."""
    if find_anvil(settings) is not None or _port_listening(settings):
        return
    cache = _state_cache(settings)
    if cache.is_symlink() or cache.is_file():
        cache.unlink()
    else:
        shutil.rmtree(cache, ignore_errors=True)


def _port_listening(settings: Settings) -> bool:
    """Whether anything accepts TCP connections on the chain's public port."""
    return port_listening(settings.rpc_host, settings.rpc_port)


def _pid_file(settings: Settings, name: str = "anvil") -> Path:
    return pid_file(settings, name)


def _read_pid(settings: Settings, name: str = "anvil") -> int | None:
    return read_pid(settings, name)


def chain_status(settings: Settings) -> NodeStatus:
    pid = _read_pid(settings)
    block: int | None = None
    chain_id: int | None = None
    try:
        block = rpc_block_number(settings.rpc_url, timeout=1.0)
        chain_id = int(str(_rpc(settings.rpc_url, "eth_chainId", [], 1.0)), 16)
    except (ChainNotRunning, urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        block = chain_id = None  # stopped answering between the two calls: not a chain we can use now
    return NodeStatus(
        running=block is not None,
        pid=pid,
        rpc_url=settings.rpc_url,
        block_number=block,
        chain_id=chain_id,
        journal=_journal(settings).path,
        journaled_block=_journal(settings).last_block(),
        keeper_running=_read_pid(settings, "keeper") is not None,
    )


def start_anvil(settings: Settings, *, wait_s: float = 20.0) -> NodeStatus:
    """Start Anvil detached (it outlives the command) on a private port, replay the journal there,
    then start the keeper, which opens the chain's public port to it (`chain.gate`); return once the
    public URL answers. No client reaches the chain before its replay is done.

    Does nothing if a chain with the right id already answers at the URL. If this chain's Anvil runs
    and answers on its private port but the public port does not (its keeper, which owns the gate,
    died), only a new keeper is started. Starts take turns (a lock on the chain directory): a second
    `qeaims chain up` while the first replays the journal waits for it, instead of restarting a keeper
    beside the one the first is about to start.
    """
    settings.chain_dir.mkdir(parents=True, exist_ok=True)
    with _start_lock(settings):
        return _start(settings, wait_s)


def _start(settings: Settings, wait_s: float) -> NodeStatus:
    status = chain_status(settings)
    if status.running:
        if status.chain_id != settings.chain_id:
            raise ChainStartFailed(
                f"a chain with id {status.chain_id} already answers at {settings.rpc_url}; "
                f"expected {settings.chain_id}: stop it or choose another port (QEAIMS_RPC_PORT)"
            )
        keeper = _read_pid(settings, "keeper")
        if keeper is None or not listens_on(keeper, settings.rpc_port):
            raise ChainStartFailed(
                f"a chain answers at {settings.rpc_url}, but not through this home's keeper "
                f"({settings.chain_dir}): another home's chain or another node holds the port; stop it or "
                "choose another port (QEAIMS_RPC_PORT)"
            )
        return status  # ours (review s38, finding 4: another home's chain on our port is not)
    anvil = find_anvil(settings)
    if anvil is None:
        return _start_locked(settings, wait_s)
    private = listening_port(anvil)
    try:
        if private is None:
            raise ChainNotRunning("no port")
        rpc_block_number(_private_url(private), timeout=1.0)
    except ChainNotRunning:
        raise ChainStartFailed(
            f"this chain's Anvil (pid {anvil}) runs but does not answer (stopped or overloaded?): wait for it, "
            "or stop it with `qeaims chain down`"
        ) from None
    stop_process(settings, "keeper", signal.SIGKILL)  # its gate is closed or hung: a new keeper opens it again
    rpc = RpcClient(_private_url(private), timeout_s=5.0, retries=0)
    _journal(settings).verify()  # a journal damaged while its keeper was dead is refused, not appended to
    if not _holds_the_journal(rpc, _journal(settings)):  # a start killed mid-replay left it: never serve it
        stop_process(settings, "anvil", signal.SIGKILL)
        return _start_locked(settings, wait_s)
    _mine(rpc, settings)  # a start killed right after its replay, or a stop that failed, left mining off
    return _open_gate(settings, anvil, private, wait_s)


def _holds_the_journal(rpc: RpcClient, journal: ChainJournal) -> bool:
    """Whether the chain holds the journal's last block (its hash), so every block before it too."""
    last: JournalBlock | None = None
    for last in journal.blocks():  # only the last one is wanted
        pass
    if last is None:
        return True
    try:
        block = rpc.call("eth_getBlockByNumber", [hex(last.number), False])
    except ChainError:
        return False
    return isinstance(block, dict) and block.get("hash") == last.hash


def _journal_to_head(settings: Settings, private: int) -> None:
    """Journal what a dead keeper left unjournaled, before its Anvil stops (a keeper that stopped
    cleanly already did, and one still running holds the lock: then nothing is done here)."""
    with open(keeper_lock_path(journal_path(settings)), "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        journal = _journal(settings)
        journal.repair()
        rpc = RpcClient(_private_url(private), timeout_s=10.0, retries=0)
        last = journal.last_block()
        with contextlib.suppress(ChainError):
            while (newest := catch_up(rpc, journal, last)) != last:
                last = newest


def _mine(rpc: RpcClient, settings: Settings) -> None:
    """The chain's mining mode: a block per transaction, or one every `block_time_s`."""
    rpc.call("evm_setAutomine", [settings.block_time_s is None])
    if settings.block_time_s is not None:
        rpc.call("evm_setIntervalMining", [max(1, round(settings.block_time_s))])


def _private_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@contextmanager
def _start_lock(settings: Settings) -> Iterator[None]:
    with open(settings.chain_dir / "start.lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _start_locked(settings: Settings, wait_s: float) -> NodeStatus:
    stop_process(settings, "keeper", signal.SIGKILL)  # our own keeper's gate is not "something else"
    if _port_listening(settings):
        raise ChainStartFailed(
            f"something listens on {settings.rpc_host}:{settings.rpc_port} but does not answer as a chain "
            "(a stopped or overloaded node?): stop it or choose another port (QEAIMS_RPC_PORT)"
        )
    _clear_state_cache(settings)
    journal = _journal(settings)
    journal.repair()
    genesis = journal.genesis()
    if genesis is not None and genesis["chain_id"] != settings.chain_id:
        raise ChainStartFailed(
            f"the chain journal in {settings.chain_dir} is for chain id {genesis['chain_id']}, not {settings.chain_id}"
        )
    if genesis is None:
        genesis = {"chain_id": settings.chain_id, "timestamp": int(time.time()), "gas_limit": settings.block_gas_limit}
        journal.start(genesis)
    args = [
        str(anvil_binary()),
        "--host", "127.0.0.1",
        "--port", "0",  # the kernel's pick: no other process can hold it first; read back from Anvil's socket
        "--chain-id", str(genesis["chain_id"]),
        "--timestamp", str(genesis["timestamp"]),
        "--gas-limit", str(genesis["gas_limit"]),
        "--mnemonic", DEV_MNEMONIC,
        "--accounts", "10",
        "--balance", "1000000",
        "--hardfork", "prague",
        "--order", "fifo",
        "--cache-path", str(_state_cache(settings)),
    ]
    process = spawn(args, settings.chain_dir / "anvil.log")
    pid_file(settings).write_text(f"{process.pid}\n")
    try:
        private = _wait_private(settings, process, wait_s)
        _replay(RpcClient(_private_url(private)), journal, settings)
        return _open_gate(settings, process.pid, private, wait_s)
    except BaseException:
        process.kill()  # never leave a half-replayed or ungated Anvil behind
        process.wait()
        pid_file(settings).unlink(missing_ok=True)
        raise


def _wait_private(settings: Settings, process: subprocess.Popen[bytes], wait_s: float) -> int:
    """The private port once Anvil answers on it."""
    deadline = time.monotonic() + wait_s
    while True:
        if process.poll() is not None:
            tail = (settings.chain_dir / "anvil.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise ChainStartFailed(f"anvil exited at start: {tail[0] if tail else 'no output'}")
        port = listening_port(process.pid)
        if port is not None:
            try:
                rpc_block_number(_private_url(port), timeout=1.0)
                return port
            except ChainNotRunning:
                pass
        if time.monotonic() > deadline:
            raise ChainStartFailed(f"anvil did not answer on its private port within {wait_s:.0f} s")
        time.sleep(0.05)


def _open_gate(settings: Settings, anvil: int, private: int, wait_s: float) -> NodeStatus:
    """Start the keeper, which journals from the private port and opens the public one; wait for it."""
    keeper = spawn(
        [sys.executable, "-m", "chain.keeper", "--journal", str(journal_path(settings)),
         "--rpc-url", _private_url(private), "--interval", str(settings.journal_interval_s),
         "--listen", f"{settings.rpc_host}:{settings.rpc_port}", "--anvil-pid", str(anvil)],
        settings.chain_dir / "keeper.log",
    )
    pid_file(settings, "keeper").write_text(f"{keeper.pid}\n")
    deadline = time.monotonic() + wait_s
    while not (status := chain_status(settings)).running:
        if keeper.poll() is not None or time.monotonic() > deadline:
            keeper.kill()
            keeper.wait()
            pid_file(settings, "keeper").unlink(missing_ok=True)
            tail = (settings.chain_dir / "keeper.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise ChainStartFailed(f"the chain's port {settings.rpc_host}:{settings.rpc_port} did not open: "
                                   f"{tail[0] if tail else 'the journal keeper gave no reason'}")
        time.sleep(0.05)
    return status


REPLAY_CHECK_EVERY = 64  # re-mined blocks checked per batched read (a round trip per block fewer)


def _replay(rpc: RpcClient, journal: ChainJournal, settings: Settings) -> int:
    """Re-mine every journaled block, same transactions in the same order, same timestamps, and
    refuse a journal that is not the chain it claims: its lines must chain by hash (checked before
    anything is replayed), and each re-mined block must be the block the journal recorded (its hash,
    which Anvil reproduces exactly, and so its state, transactions and receipts roots).

    The re-mined blocks are read back in batches (`REPLAY_CHECK_EVERY`), not one by one: nothing but
    the replay reaches the private port (clients wait at the closed gate), so a difference found a few
    blocks late refuses the same start, and is still named at its own block."""
    total = journal.verify()
    replayed = 0
    unchecked: list[JournalBlock] = []
    last = 0
    rpc.call("evm_setAutomine", [False])
    try:
        for block in journal.blocks():
            try:
                _remine(rpc, block, total)
            except JournalBroken:
                _check_remined(rpc, unchecked, total)  # an earlier block that differs is the better answer
                raise
            unchecked.append(block)
            replayed, last = replayed + 1, block.number
            if len(unchecked) >= REPLAY_CHECK_EVERY:
                _check_remined(rpc, unchecked, total)
                unchecked = []
        _check_remined(rpc, unchecked, total)
    finally:
        _mine(rpc, settings)
    latest = rpc.call("eth_getBlockByNumber", ["latest", False])
    if replayed and int(latest["number"], 16) != last:
        raise JournalBroken(f"journal replay diverged: the chain is at block {int(latest['number'], 16)} after "
                            f"re-mining the journal through block {last}")
    rpc.call("evm_setNextBlockTimestamp", [max(int(time.time()), int(latest["timestamp"], 16) + 1)])
    return replayed


def _remine(rpc: RpcClient, block: JournalBlock, total: int) -> None:
    """Mine one journaled block again: its transactions, then the block at its timestamp."""
    if block.raw_transactions:
        try:
            rpc.batch([("eth_sendRawTransaction", [raw]) for raw in block.raw_transactions])
        except RpcError as exc:
            raise JournalBroken(f"the chain journal does not replay at block {block.number} of {total}: "
                                f"the node refused a journaled transaction ({exc}); the journal was "
                                "edited or is not this chain's: refusing to start") from None
    rpc.call("evm_mine", [{"timestamp": block.timestamp}])


def _check_remined(rpc: RpcClient, blocks: list[JournalBlock], total: int) -> None:
    """Each re-mined block is the journal's: same hash, parent and roots (so the same state, transactions
    and receipts). Any difference, an extra transaction included, means a journal that is not this chain's
    (or an Anvil that re-mines differently)."""
    if not blocks:
        return
    mined = rpc.batch([("eth_getBlockByNumber", [hex(b.number), False]) for b in blocks])
    for block, got in zip(blocks, mined, strict=True):
        if not got:
            raise JournalBroken(f"journal replay diverged at block {block.number} of {total}: the node has no "
                                "such block after re-mining it")
        differences = block.differences(got)
        if differences:
            raise JournalBroken(f"the chain journal does not match the chain it replays at block {block.number} "
                                f"of {total}: the re-mined block has {'; '.join(differences)}. The journal was "
                                "edited or is not this chain's: refusing to start")


def stop_anvil(settings: Settings, *, hard: bool = False) -> bool:
    """Stop the chain. Clean: nothing more is mined, the keeper closes the gate and journals up to the
    head, then Anvil stops. Hard: SIGKILL Anvil only, as a crash would (its keeper sees it end, closes
    the gate and exits); the next start replays what the keeper had journaled."""
    if hard:
        return stop_process(settings, "anvil", signal.SIGKILL)
    anvil = find_anvil(settings)
    private = listening_port(anvil) if anvil is not None else None
    if private is not None:
        try:  # no block may be mined after the keeper's last catch-up
            rpc = RpcClient(_private_url(private), timeout_s=5.0, retries=0)
            rpc.call("evm_setAutomine", [False])
            rpc.call("evm_setIntervalMining", [0])
        except ChainError:
            pass
    stop_process(settings, "keeper", signal.SIGTERM)
    if private is not None:
        _journal_to_head(settings, private)
    stopped = stop_process(settings, "anvil", signal.SIGTERM)
    # the pid shows as a zombie as soon as Anvil's main thread ends, while its other threads (the
    # server, the state writer) are still being torn down: its port closing is the sign it is gone
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and (
            _port_listening(settings) or (private is not None and port_listening("127.0.0.1", private))):
        time.sleep(0.05)
    _clear_state_cache(settings)
    return stopped
