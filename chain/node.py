"""The embedded development chain: an Anvil process plus its journal keeper, under QEAIMS_HOME.

Persistence is the journal of raw signed transactions (`chain/journal.py`), not Anvil's state
dumps, which proved inconsistent after a hard kill. On start, a fresh Anvil with the journal's
genesis parameters replays every journaled block with its original timestamp, then the keeper
resumes journaling. The replay first checks the journal's hash chain, then compares every
re-mined block with the hash and roots the journal recorded, and refuses (a `JournalBroken`
naming the block) a journal that does not match. A hard kill loses at most the blocks mined in the last keeper interval; the
event outboxes resubmit those. This module is development tooling, so it may use Anvil's own
`evm_*`/`anvil_*` methods for the replay; production (Besu/QBFT) persists blocks itself and the
rest of the code speaks only `eth_*`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
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


def _pid_file(settings: Settings, name: str = "anvil") -> Path:
    return settings.chain_dir / f"{name}.pid"


def _journal(settings: Settings) -> ChainJournal:
    return ChainJournal(settings.chain_dir / "journal.jsonl")


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
    return settings.chain_dir / "anvil-states"


def _clear_state_cache(settings: Settings) -> None:
    """Remove Anvil's spilled states, unless an Anvil of this chain may still use them.

    Two signs, and either keeps them: the pid file names a live Anvil, or something listens on the
    chain's port. The port matters because the pid file can be wrong (removed by hand, or overwritten
    by a start that failed), and a stopped or busy Anvil still holds its port while it answers no
    request: deleting its states would lose its history and leave it unable to spill again.
    A symlink or a file in the cache's place is removed, not followed."""
    if _read_pid(settings) is not None or _port_listening(settings):
        return
    cache = _state_cache(settings)
    if cache.is_symlink() or cache.is_file():
        cache.unlink()
    else:
        shutil.rmtree(cache, ignore_errors=True)


def _port_listening(settings: Settings) -> bool:
    """Whether anything accepts TCP connections on the chain's port (a stopped process still does:
    the kernel completes the handshake into its backlog)."""
    try:
        with socket.create_connection((settings.rpc_host, settings.rpc_port), timeout=0.5) as probe:
            # a port in the ephemeral range with nothing on it can be "connected" to by the probe itself
            # (TCP simultaneous open: the kernel picked that very port as the probe's source)
            return bool(probe.getsockname() != probe.getpeername())
    except OSError:
        return False


def _is_ours(pid: int, name: str, settings: Settings) -> bool:
    """Whether ``pid`` runs this chain's Anvil or keeper, as its pid file claims.

    After a reboot (or pid reuse) a pid file's number can belong to another program, or to another
    chain's Anvil or keeper on the same machine (a second home, a benchmark's chain): none of them may
    be signalled, cleaned up after or taken for this chain. So the command line must be the program
    *and* this chain's: Anvil on this chain's port, the keeper on this chain's journal. Where /proc
    cannot tell (another OS), the pid file is believed."""
    try:
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return True
    if name == "anvil":
        return Path(argv[0]).name == "anvil" and _option(argv, "--port") == str(settings.rpc_port)
    return "chain.keeper" in argv[:3] and _option(argv, "--journal") == str(_journal(settings).path)


def _option(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None


def _read_pid(settings: Settings, name: str = "anvil") -> int | None:
    try:
        pid = int(_pid_file(settings, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's: ours only if its command line says so
        pass
    if _is_zombie(pid) or not _is_ours(pid, name, settings):
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


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


class ForeignTransaction(JournalBroken):
    """Live clients' transactions slipped into one replayed block between the pool's emptying and the
    block's mining (a millisecond's window) `BLOCK_ATTEMPTS` times running: that start is thrown away and
    made again."""


REPLAY_ATTEMPTS = 3
BLOCK_ATTEMPTS = 20


def start_anvil(settings: Settings, *, wait_s: float = 20.0) -> NodeStatus:
    """Start Anvil detached (it outlives the command), replay the journal, start the keeper.

    Does nothing if a chain with the right id already answers at the URL. Starts take turns (a lock on
    the chain directory): a second `qeaims chain up` while the first replays the journal waits for it,
    instead of restarting a keeper beside the one the first is about to start.
    """
    settings.chain_dir.mkdir(parents=True, exist_ok=True)
    with _start_lock(settings):
        for attempt in range(1, REPLAY_ATTEMPTS + 1):
            try:
                return _start(settings, wait_s)
            except ForeignTransaction:
                if attempt == REPLAY_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")


def _start(settings: Settings, wait_s: float) -> NodeStatus:
    status = chain_status(settings)
    if status.running:
        if status.chain_id != settings.chain_id:
            raise ChainStartFailed(
                f"a chain with id {status.chain_id} already answers at {settings.rpc_url}; "
                f"expected {settings.chain_id}: stop it or choose another port (QEAIMS_RPC_PORT)"
            )
        if status.pid is not None and not status.keeper_running:
            _start_keeper(settings, _journal(settings))  # our Anvil runs but its journal keeper died
        return chain_status(settings)
    return _start_locked(settings, wait_s)


@contextmanager
def _start_lock(settings: Settings) -> Iterator[None]:
    with open(settings.chain_dir / "start.lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _start_locked(settings: Settings, wait_s: float) -> NodeStatus:
    if _port_listening(settings):
        raise ChainStartFailed(
            f"something listens on {settings.rpc_host}:{settings.rpc_port} but does not answer as a chain "
            "(a stopped or overloaded Anvil?): stop it or choose another port (QEAIMS_RPC_PORT)"
        )
    _stop_process(settings, "keeper", signal.SIGKILL)
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
        "--host", settings.rpc_host,
        "--port", str(settings.rpc_port),
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
    process = _spawn(args, settings.chain_dir / "anvil.log")
    _pid_file(settings).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + wait_s
    while not chain_status(settings).running:
        if process.poll() is not None:
            _pid_file(settings).unlink(missing_ok=True)  # a dead pid must not stand for the chain
            tail = (settings.chain_dir / "anvil.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise ChainStartFailed(f"anvil exited at start: {tail[0] if tail else 'no output'}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            _pid_file(settings).unlink(missing_ok=True)
            raise ChainStartFailed(f"anvil did not answer at {settings.rpc_url} within {wait_s:.0f} s")
        time.sleep(0.1)
    try:
        _replay(RpcClient(settings.rpc_url), journal, settings)
    except BaseException:
        process.kill()  # never leave a half-replayed chain answering at the URL
        process.wait()
        _pid_file(settings).unlink(missing_ok=True)
        raise
    _start_keeper(settings, journal)
    return chain_status(settings)


def _start_keeper(settings: Settings, journal: ChainJournal) -> None:
    keeper = _spawn(
        [sys.executable, "-m", "chain.keeper", "--journal", str(journal.path), "--rpc-url", settings.rpc_url,
         "--interval", str(settings.journal_interval_s)],
        settings.chain_dir / "keeper.log",
    )
    _pid_file(settings, "keeper").write_text(f"{keeper.pid}\n")


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=project_root())
    finally:
        log.close()


def _replay(rpc: RpcClient, journal: ChainJournal, settings: Settings) -> int:
    """Re-mine every journaled block, same transactions in the same order, same timestamps, and
    refuse a journal that is not the chain it claims: its lines must chain by hash (checked before
    anything is replayed), and each re-mined block must be the block the journal recorded (its hash,
    which Anvil reproduces exactly, and so its state, transactions and receipts roots)."""
    total = journal.verify()
    replayed = 0
    rpc.call("evm_setAutomine", [False])
    try:
        for block in journal.blocks():
            _replay_block(rpc, block, total)
            replayed += 1
    finally:
        rpc.call("evm_setAutomine", [settings.block_time_s is None])
    if settings.block_time_s is not None:
        rpc.call("evm_setIntervalMining", [max(1, round(settings.block_time_s))])
    latest = rpc.call("eth_getBlockByNumber", ["latest", False])
    rpc.call("evm_setNextBlockTimestamp", [max(int(time.time()), int(latest["timestamp"], 16) + 1)])
    return replayed


def _replay_block(rpc: RpcClient, block: JournalBlock, total: int) -> None:
    """Mine one journaled block again and check it is the journal's. Live clients (a city's recorders)
    send while the journal replays: the pool is emptied before the block's transactions go in, and a
    block that a client's transaction still reached between the emptying and the mining is rolled back
    (`anvil_rollback`) and mined again."""
    for _ in range(BLOCK_ATTEMPTS):
        try:
            rpc.batch([("anvil_dropAllTransactions", []),
                       *(("eth_sendRawTransaction", [raw]) for raw in block.raw_transactions)])
        except RpcError as exc:
            raise JournalBroken(f"the chain journal does not replay at block {block.number} of {total}: "
                                f"the node refused a journaled transaction ({exc}); the journal was "
                                "edited or is not this chain's: refusing to start") from None
        rpc.call("evm_mine", [{"timestamp": block.timestamp}])
        mined = rpc.call("eth_getBlockByNumber", ["latest", False])
        head = int(mined["number"], 16)
        if head != block.number:
            raise JournalBroken(f"journal replay diverged at block {block.number} (chain at {head})")
        differences = block.differences(mined)
        if not differences:
            return
        if len(mined["transactions"]) <= len(block.raw_transactions):
            raise JournalBroken(f"the chain journal does not match the chain it replays at block {block.number} "
                                f"of {total}: the re-mined block has {'; '.join(differences)}. The journal was "
                                "edited or is not this chain's: refusing to start")
        rpc.call("anvil_rollback", [1])  # a client's transaction got in: that block again, without it
    raise ForeignTransaction(f"clients' transactions reached replayed block {block.number} {BLOCK_ATTEMPTS} times")


def _stop_process(settings: Settings, name: str, sig: signal.Signals, wait_s: float = 30.0) -> bool:
    pid = _read_pid(settings, name)
    if pid is None:
        _pid_file(settings, name).unlink(missing_ok=True)
        return False
    os.kill(pid, sig)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if _is_zombie(pid):
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    _pid_file(settings, name).unlink(missing_ok=True)
    return True


def stop_anvil(settings: Settings, *, hard: bool = False) -> bool:
    """Stop the chain. Clean: the keeper journals up to the head, then Anvil stops. Hard: SIGKILL
    Anvil only, as a crash would; the next start replays what the keeper had journaled."""
    if hard:
        return _stop_process(settings, "anvil", signal.SIGKILL)
    if _read_pid(settings) is not None:
        try:  # no block may be mined after the keeper's last catch-up
            rpc = RpcClient(settings.rpc_url, timeout_s=5.0, retries=0)
            rpc.call("evm_setAutomine", [False])
            rpc.call("evm_setIntervalMining", [0])
        except ChainError:
            pass
    _stop_process(settings, "keeper", signal.SIGTERM)
    stopped = _stop_process(settings, "anvil", signal.SIGTERM)
    # the pid shows as a zombie as soon as Anvil's main thread ends, while its other threads (the
    # server, the state writer) are still being torn down: the port closing is the sign it is gone
    deadline = time.monotonic() + 5.0
    while _port_listening(settings) and time.monotonic() < deadline:
        time.sleep(0.05)
    _clear_state_cache(settings)
    return stopped


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
