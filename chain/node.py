"""The embedded development chain: an Anvil child process whose state lives under QEAIMS_HOME.

Anvil dumps its whole chain (accounts, blocks, receipts and logs) to `chain/state.json` every
`state_interval_s` seconds and on a clean exit, and reloads it on start, so history survives a
restart. A hard kill loses at most the last interval; the event outbox (`chain/outbox.py`)
resubmits whatever the reloaded chain no longer has. The `anvil_*` RPC methods are never used
here: production runs Besu/QBFT behind the same `eth_*` interface.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from qeaims.config import Settings, project_root
from qeaims.errors import ChainNotRunning, ChainStartFailed

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
    state_file: Path


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


def _pid_file(settings: Settings) -> Path:
    return settings.chain_dir / "anvil.pid"


def _read_pid(settings: Settings) -> int | None:
    try:
        pid = int(_pid_file(settings).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    if _is_zombie(pid):
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
    except ChainNotRunning:
        pass
    return NodeStatus(
        running=block is not None,
        pid=pid,
        rpc_url=settings.rpc_url,
        block_number=block,
        chain_id=chain_id,
        state_file=settings.chain_dir / "state.json",
    )


def start_anvil(settings: Settings, *, wait_s: float = 20.0) -> NodeStatus:
    """Start Anvil detached (it outlives the command) unless one already answers at the URL."""
    status = chain_status(settings)
    if status.running:
        if status.chain_id != settings.chain_id:
            raise ChainStartFailed(
                f"a chain with id {status.chain_id} already answers at {settings.rpc_url}; "
                f"expected {settings.chain_id}: stop it or choose another --port"
            )
        return status
    settings.chain_dir.mkdir(parents=True, exist_ok=True)
    state_file = settings.chain_dir / "state.json"
    args = [
        str(anvil_binary()),
        "--host", settings.rpc_host,
        "--port", str(settings.rpc_port),
        "--chain-id", str(settings.chain_id),
        "--mnemonic", DEV_MNEMONIC,
        "--accounts", "10",
        "--balance", "1000000",
        "--gas-limit", str(settings.block_gas_limit),
        "--state", str(state_file),
        "--state-interval", str(settings.state_interval_s),
        "--hardfork", "prague",
    ]
    if settings.block_time_s is not None:
        args += ["--block-time", str(settings.block_time_s)]
    log = open(settings.chain_dir / "anvil.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    finally:
        log.close()
    _pid_file(settings).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (settings.chain_dir / "anvil.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise ChainStartFailed(f"anvil exited at start: {tail[0] if tail else 'no output'}")
        status = chain_status(settings)
        if status.running:
            return status
        time.sleep(0.1)
    process.kill()
    raise ChainStartFailed(f"anvil did not answer at {settings.rpc_url} within {wait_s:.0f} s")


def stop_anvil(settings: Settings, *, hard: bool = False, wait_s: float = 30.0) -> bool:
    """Stop the embedded Anvil; a clean stop lets it dump its state first. Returns False if none ran."""
    pid = _read_pid(settings)
    if pid is None:
        return False
    os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if _is_zombie(pid):
            _reap(pid)
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    _pid_file(settings).unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
