"""A throwaway city for the crash and chain-down campaigns: its own data directory, chain and ports.

The campaigns kill processes with SIGKILL and stop the chain, so they never touch the city the user
runs: each campaign deploys a fresh development consortium in a temporary home on free loopback
ports, starts it with `qeaims up` (the same supervisor an operator runs), and removes everything it
started at the end (`qeaims down`, which also stops the chain, then the home).

What it reads back is what an operator or auditor can read: the supervisor's status file (which
pid runs which component), the chain (each recorder's `lastSeq`, `qeaims audit events`,
`qeaims audit verify`) and the recorders' outboxes (what was queued but is not on chain yet).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.node import rpc_block_number, start_anvil, stop_anvil
from core.config import Settings, load_settings
from core.errors import ChainError, QeaimsError
from core.messages import Sector

__all__ = ["City", "OutboxState", "free_port"]

CAMPAIGN_SCRYPT_N = 1024
"""The throwaway city's keystores: real scrypt with cheap parameters (its keys die with the run)."""
_PROBE_TARGET = "campaign-probe"
_NODE_ACTIVE = 1  # IRegistry.NodeStatus.Active
CITY_SPEED = 600.0
"""Twin seconds per wall second: a sector's default fault scenario plays in about half a minute."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class OutboxState:
    """One recorder's outbox: the last sequence number it assigned and how many wait for the chain."""

    account: str
    last_seq: int
    pending: int


@dataclass
class City:
    sectors: tuple[Sector, ...]
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="qeaims-campaign-")))
    rpc_port: int = field(default_factory=free_port)
    mqtt_port: int = field(default_factory=free_port)
    kme_port: int = field(default_factory=free_port)
    speed: float = CITY_SPEED
    keep_home: bool = False

    @property
    def settings(self) -> Settings:
        return load_settings(home=self.home, rpc_port=self.rpc_port, scrypt_n=CAMPAIGN_SCRYPT_N)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, QEAIMS_HOME=str(self.home), QEAIMS_RPC_PORT=str(self.rpc_port),
                   QEAIMS_SCRYPT_N=str(CAMPAIGN_SCRYPT_N), PYTHONUNBUFFERED="1")
        env.pop("QEAIMS_RPC_URL", None)
        return env

    def cli(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qeaims", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def cli_json(self, *args: str, timeout: float = 300.0) -> Any:
        done = self.cli(*args, "--json", timeout=timeout)
        if done.returncode not in (0, 1):  # 1: a failed audit still prints its findings
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise QeaimsError(f"`qeaims {' '.join(args)}` failed in the campaign's city: {tail}")
        return json.loads(done.stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "qeaims", *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    # --- life cycle -------------------------------------------------------------------------------

    def up(self) -> None:
        """Chain, deployment, models, then the supervisor with broker, KME, controller, oracles and twins."""
        done = self.cli("up", "--sectors", ",".join(s.value for s in self.sectors), "--oracles", "4",
                        "--speed", f"{self.speed:g}", "--mqtt-port", str(self.mqtt_port), "--kme-port",
                        str(self.kme_port), "--no-api", "--json", timeout=900)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise QeaimsError(f"the campaign's city did not start: {tail} (its home: {self.home})")

    def down(self) -> None:
        """Stop everything this city started, the chain included; remove its home unless kept."""
        try:
            self.cli("down", timeout=180)
        finally:
            stop_anvil(self.settings, hard=True)  # `down` stops it cleanly; a chain left stopped (SIGSTOP) too
            if not self.keep_home:
                shutil.rmtree(self.home, ignore_errors=True)

    # --- what runs --------------------------------------------------------------------------------

    def status(self) -> dict[str, dict[str, Any]]:
        """The supervisor's components by name (pid, state, restarts)."""
        try:
            body = json.loads((self.home / "run" / "status.json").read_text())
        except (OSError, ValueError):
            return {}
        return {str(c["name"]): c for c in body.get("components", [])}

    def anvil_pid(self) -> int | None:
        try:
            return int((self.settings.chain_dir / "anvil.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def chain_answers(self) -> bool:
        try:
            rpc_block_number(self.settings.rpc_url, timeout=1.0)
        except ChainError:
            return False
        return True

    def restart_chain(self) -> None:
        """What a service manager does for a chain node that died: start it again (the journal replays)."""
        start_anvil(self.settings, wait_s=60.0)

    def recorders(self) -> dict[str, str]:
        """Every account this city records events with (lower-case address → its name): the
        controller and the oracles of the city's sectors."""
        out: dict[str, str] = {}
        keystores = self.settings.keystore_dir
        for path in [keystores / "controller.json",
                     *(keystores / "oracles" / f"{s.value}-{i}.json" for s in self.sectors for i in range(1, 5))]:
            try:
                out[str(json.loads(path.read_text())["address"]).lower()] = path.stem
            except (OSError, ValueError, KeyError):
                continue
        return out

    def oracle_accounts(self) -> list[str]:
        return [a for a, name in self.recorders().items() if name != "controller"]

    def outboxes(self) -> list[OutboxState]:
        """Each recorder's outbox, read-only (the recorders keep writing it)."""
        out = []
        for path in sorted((self.home / "outbox").glob("*/0x*.sqlite")):
            try:
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
                try:
                    last = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
                    pending = int(db.execute("SELECT COUNT(*) FROM events WHERE confirmed = 0").fetchone()[0])
                finally:
                    db.close()
            except sqlite3.Error:
                continue
            out.append(OutboxState(path.stem.lower(), last, pending))
        return out

    def telemetry(self) -> dict[str, tuple[int, int]]:
        """Each oracle's telemetry store, read-only: (readings stored, readings sealed into batches)."""
        out: dict[str, tuple[int, int]] = {}
        for path in sorted((self.home / "telemetry").glob("0x*.sqlite")):
            try:
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
                try:
                    stored = int(db.execute("SELECT COALESCE(MAX(first_id + count - 1), 0) FROM chunks").fetchone()[0])
                    sealed = int(db.execute("SELECT COALESCE(MAX(first_id + count - 1), 0) FROM batches "
                                            "WHERE outbox_seq IS NOT NULL").fetchone()[0])
                finally:
                    db.close()
            except sqlite3.Error:
                continue
            out[path.stem.lower()] = (stored, sealed)
        return out

    def block_times(self, after: int) -> list[int]:
        """The timestamps of the blocks mined after block `after`."""
        from chain.rpc import RpcClient

        rpc = RpcClient(self.settings.rpc_url, timeout_s=10.0)
        head = int(rpc.call("eth_blockNumber"), 16)
        return [int(rpc.call("eth_getBlockByNumber", [hex(n), False])["timestamp"], 16)
                for n in range(after + 1, head + 1)]

    def active_faults(self, sector: Sector, timeout_s: float = 20.0) -> list[str] | None:
        """The assets `sector`'s twin holds a fault on now, asked over its simulation topic; None when the
        twin did not answer (it is down, or its broker) or answered in a way that does not list them.

        The question is a `clear-fault` of an asset no twin has: the twin refuses it and its refusal
        lists the active faults (`... has no active fault to clear (active: [...])`), changing nothing."""
        ack = self._control(sector, "clear-fault", _PROBE_TARGET, timeout_s)
        if ack is None or ack.ok or "(active: " not in ack.error:
            return None
        listed = ack.error.rsplit("(active: ", 1)[1].rstrip(")").strip()
        if listed == "none":
            return []
        return [part.strip().strip("'\"") for part in listed.strip("[]").split(",") if part.strip()]

    def clear_fault(self, sector: Sector, target: str, timeout_s: float = 20.0) -> bool:
        """Repair `target` in the twin, as the scenario's crew would have: whether the twin did."""
        ack = self._control(sector, "clear-fault", target, timeout_s)
        return ack is not None and ack.ok

    def _control(self, sector: Sector, op: str, target: str, timeout_s: float) -> Any:
        from bus.secure import open_links
        from controller.commander import Commander, CommandTimeout
        from links.plan import OPERATIONS_SAE
        from sectors.remote import SimControl

        # the operations SAE's links, as `qeaims scenario run` uses them: one process at a time holds them
        # (a lock file), so they are closed before the scenario starts, or it could not
        try:
            links = open_links(self.home, OPERATIONS_SAE)
        except (QeaimsError, OSError):
            return None
        try:
            with Commander(port=self.mqtt_port, client_id="crash-campaign", links=links) as commander:
                return commander.control(sector, SimControl(op=op, target=target),  # type: ignore[arg-type]
                                         timeout_s=timeout_s)
        except (CommandTimeout, QeaimsError, OSError):
            return None
        finally:
            if links is not None:
                links.close()

    def node_in_service(self, node: str) -> bool | None:
        """Whether the registry has `node` active again (not isolated, not under repair); None while the
        chain does not answer."""
        from chain.connect import connect
        from keys.ids import to_bytes32

        try:
            client, _ = connect(self.settings)
            status = client.call1("Registry", "node", to_bytes32(node))[3]
        except (ChainError, OSError):
            return None
        return int(status) == _NODE_ACTIVE

    def ledger_last_seqs(self) -> dict[str, int]:
        """`EventLedger.lastSeq` of every recorder, read from the chain now ({} while it is down)."""
        from chain.connect import connect

        try:
            client, _ = connect(self.settings)
            return {a: int(client.call1("EventLedger", "lastSeq", a))
                    for a in self.recorders()}
        except (ChainError, OSError):
            return {}


def kill(pid: int | None, sig: signal.Signals = signal.SIGKILL) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
