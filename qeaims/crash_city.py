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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from chain.node import rpc_block_number, start_anvil, stop_anvil
from core.config import Settings, load_settings
from core.errors import ChainError, QeaimsError
from core.messages import Sector
from qeaims.crash_checks import Ending, check_coverage, check_ledger, check_outboxes
from sectors.runner import REPORT_PERIOD_S

__all__ = ["City", "OutboxState", "Progress", "free_port", "throwaway_city"]

Progress = Callable[[str], None]
T = TypeVar("T")

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
        def read(db: sqlite3.Connection) -> tuple[int, int]:
            return (int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]),
                    int(db.execute("SELECT COUNT(*) FROM events WHERE confirmed = 0").fetchone()[0]))

        return [OutboxState(name, last, pending)
                for name, (last, pending) in _read_stores(self.home / "outbox", "*/0x*.sqlite", read)]

    def telemetry(self) -> dict[str, tuple[int, int]]:
        """Each oracle's telemetry store, read-only: (readings stored, readings sealed into batches)."""
        def read(db: sqlite3.Connection) -> tuple[int, int]:
            return (int(db.execute("SELECT COALESCE(MAX(first_id + count - 1), 0) FROM chunks").fetchone()[0]),
                    int(db.execute("SELECT COALESCE(MAX(first_id + count - 1), 0) FROM batches "
                                   "WHERE outbox_seq IS NOT NULL").fetchone()[0]))

        return dict(_read_stores(self.home / "telemetry", "0x*.sqlite", read))

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


    def drained(self) -> bool:
        """Every outbox holds nothing the chain lacks: nothing pending, its last seq the ledger's `lastSeq`."""
        seqs = self.ledger_last_seqs()
        return bool(seqs) and all(o.pending == 0 and seqs.get(o.account, o.last_seq) == o.last_seq
                                  for o in self.outboxes())

    def ending(self, progress: Progress) -> Ending:
        """The checks both campaigns end with, once the city has drained: outboxes against the ledger,
        the ledger's events (`qeaims audit events`), then `qeaims audit verify`."""
        outbox_problems = check_outboxes(((o.account, o.last_seq, o.pending) for o in self.outboxes()),
                                         self.ledger_last_seqs())
        progress("reading and checking the ledger")
        events = self.cli_json("audit", "events", "--limit", "10000000")
        ledger = check_ledger(events)
        progress("checking every oracle's readings (each sensor once a period)")
        # each store is judged against its sector's report period, not one read off the store itself
        periods_ms = {s.value: int(p * 1000) for s, p in REPORT_PERIOD_S.items()}
        period_of = {str(e["oracle"]).lower(): periods_ms.get(str(e.get("sector", "")))
                     for e in events if e["kind"] == "telemetry-root"}
        for store, (stored, seen) in _read_stores(self.home / "telemetry", "*.sqlite", _coverage_rows):
            period_ms = period_of.get(store)
            if period_ms is None:
                if stored:
                    ledger.telemetry_problems.append(f"{store[:10]}: {stored} readings stored, no batch of them anchored")
                continue
            ledger.telemetry_problems += check_coverage(store, stored, seen, period_ms)
        progress("auditing (qeaims audit verify)")
        return Ending(outbox_problems, ledger, self.cli_json("audit", "verify", timeout=900))


@contextmanager
def throwaway_city(sectors: tuple[Sector, ...], keep_home: bool, progress: Progress) -> Iterator[City]:
    """A city started with `qeaims up` for the length of the block, stopped (`down`) however it ends."""
    city = City(sectors, keep_home=keep_home)
    try:
        progress(f"starting a throwaway city ({', '.join(s.value for s in sectors)}) in {city.home}")
        city.up()
        yield city
    finally:
        progress("stopping the throwaway city")
        city.down()


def _coverage_rows(db: sqlite3.Connection) -> tuple[int, list[tuple[int, int]]]:
    """A telemetry store's reading count and the (sensor, field time) of each (`oracles.telemetry_once`)."""
    stored = int(db.execute("SELECT COALESCE(MAX(first_id + count), 1) - 1 FROM chunks").fetchone()[0])
    return stored, [(int(a), int(b)) for a, b in db.execute("SELECT sensor, time_ms FROM seen")]


def _read_stores(folder: Path, pattern: str, read: Callable[[sqlite3.Connection], T]) -> list[tuple[str, T]]:
    """`read` over each SQLite store matching `pattern` under `folder`, opened read-only (its owner keeps
    writing it), with the store's lower-case file stem; a store that cannot be read now is left out."""
    out: list[tuple[str, T]] = []
    for path in sorted(folder.glob(pattern)):
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            try:
                out.append((path.stem.lower(), read(db)))
            finally:
                db.close()
        except sqlite3.Error:
            continue
    return out


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
