"""The chain-down campaign: the chain unreachable for a minute mid-scenario, then back.

How the outage is made: the chain node is frozen with SIGSTOP and thawed with SIGCONT. To the
oracles and the controller that is what a network partition or a hung validator looks like: the
TCP port still accepts connections (the kernel completes the handshake) but no answer ever comes,
so every call ends in a timeout, the slow failure, not a quick "connection refused". A killed
node (the quick failure, followed by a journal replay) is the crash campaign's; a blocked port
(iptables) needs root and would fail the same way SIGSTOP does. The chain's state is untouched,
so everything the campaign sees afterwards is the clients' doing.

What it checks:
- queueing: while the chain is down, the recorders' outboxes grow (events get their sequence
  numbers on disk) and nothing of theirs lands;
- no decision without the quorum: the controller sends no command for a decision during the
  outage (the twins log every command with the decision it cites), and every decision it acted
  on is a proposal the quorum executed on chain;
- nothing lost, in order: once the chain is back, every outbox drains (its last seq is the ledger's
  `lastSeq`, nothing pending), each recorder's events are on chain in the order of their sequence
  numbers without a gap or repeat (`qeaims.crash_checks`), and `qeaims audit verify` passes;
- how long the backlog took to drain after the chain came back.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from chain.node import rpc_block_number
from core.errors import ConfigError
from core.messages import Sector
from qeaims.crash_checks import Ending
from qeaims.crash_city import City, Progress, kill, throwaway_city, wait_for

__all__ = ["ChainDownOptions", "ChainDownReport", "commands_in_window", "run_chain_down"]

DRAIN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ChainDownOptions:
    seconds: float
    sectors: tuple[Sector, ...]
    keep_home: bool = False

    def __post_init__(self) -> None:
        if self.seconds < 1:
            raise ConfigError(f"--seconds must be at least 1, not {self.seconds:g}")


@dataclass
class ChainDownReport:
    seconds: float
    sectors: list[str]
    queued: int = 0  # events appended to the outboxes while the chain was down
    readings_during_outage: int = 0  # readings the oracles stored (to anchor later) while the chain was down
    pending_max: int = 0  # the largest backlog seen (events waiting, all recorders)
    landed_during_outage: int = 0  # blocks with a time inside the outage: must be 0 (the chain was frozen)
    drained: bool = False
    drain_s: float | None = None
    commands_during_outage: list[str] = field(default_factory=list)
    commands_without_quorum: list[str] = field(default_factory=list)
    decided_commands: int = 0
    ending: Ending = field(default_factory=Ending)
    scenario: dict[str, Any] = field(default_factory=dict)
    home: str = ""

    @property
    def ok(self) -> bool:
        return (self.queued + self.readings_during_outage > 0 and self.landed_during_outage == 0 and self.drained
                and self.ending.ok and not self.commands_during_outage and not self.commands_without_quorum)

    def problems(self) -> list[str]:
        out = [*self.ending.problems(), *(f"command during the outage: {c}" for c in self.commands_during_outage),
               *(f"command for a decision the quorum did not execute: {c}" for c in self.commands_without_quorum)]
        if self.queued + self.readings_during_outage == 0:
            out.append("nothing was queued while the chain was down (the outage did not bite)")
        if self.landed_during_outage:
            out.append(f"{self.landed_during_outage} blocks were mined while the chain was frozen")
        if not self.drained:
            out.append(f"the backlog did not drain within {DRAIN_TIMEOUT_S:g} s")
        return out

    def rows(self) -> list[tuple[str, str]]:
        return [("events queued in the outboxes during the outage", str(self.queued)),
                ("readings stored during the outage (anchored after)", str(self.readings_during_outage)),
                ("largest backlog (events)", str(self.pending_max)),
                ("blocks mined during the outage", str(self.landed_during_outage)),
                ("commands sent during the outage", str(len(self.commands_during_outage))),
                ("commands without an executed quorum decision", str(len(self.commands_without_quorum))),
                ("commands for quorum decisions (whole run)", str(self.decided_commands)),
                ("backlog drained", "yes" if self.drained else "NO"),
                ("drain time after the chain returned (s)", "-" if self.drain_s is None else f"{self.drain_s:.1f}"),
                ("events lost", str(self.ending.events_lost)),
                ("duplicates", str(self.ending.ledger.duplicates)),
                ("out of order", str(len(self.ending.ledger.out_of_order))),
                ("audit verify", self.ending.audit_summary()),
                ("scenario faults injected / isolated",
                 f"{self.scenario.get('injected')} / {self.scenario.get('isolated')}")]

    def as_json(self) -> dict[str, Any]:
        body = {k: v for k, v in asdict(self).items() if k != "ending"}
        return {**body, **self.ending.as_json(), "ok": self.ok}


def commands_in_window(lines: list[str], start: float, end: float) -> tuple[list[str], list[int]]:
    """From a twin's log: the decision commands it received between `start` and `end` (epoch seconds),
    and the proposal every decision command of the whole log cites."""
    during: list[str] = []
    proposals: list[int] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        ref = str(entry.get("ref", "")) if entry.get("event") == "twin-command" else ""
        if not ref.startswith("proposal:"):
            continue
        proposals.append(int(ref.split(":", 1)[1]))
        when = datetime.fromisoformat(str(entry["ts"])).timestamp()
        if start <= when <= end:
            during.append(f"{entry.get('sector')}: {entry.get('what')} ({ref}) at {entry['ts']}")
    return during, proposals


def _pending(city: City) -> tuple[int, int]:
    """(events ever appended, events waiting) over every outbox."""
    boxes = city.outboxes()
    return sum(o.last_seq for o in boxes), sum(o.pending for o in boxes)


def run_chain_down(options: ChainDownOptions, progress: Progress = lambda _: None) -> ChainDownReport:
    report = ChainDownReport(options.seconds, [s.value for s in options.sectors])
    with throwaway_city(options.sectors, options.keep_home, progress) as city:
        report.home = str(city.home) if options.keep_home else ""
        sector = options.sectors[0]
        twin_log = city.home / "run" / "logs" / f"twin-{sector.value}.log"
        seen = twin_log.stat().st_size
        scenario = city.popen("scenario", "run", f"{sector.value}-fault", "--timeout",
                              f"{options.seconds + 120:g}", "--constant-speed", "--no-baseline", "--json")
        # down the moment the twin takes the fault: its detection, votes and the controller's response all
        # fall into the outage
        wait_for(lambda: b"inject-fault" in twin_log.read_bytes()[seen:], 60.0, interval_s=0.05)
        head_before = int(rpc_block_number(city.settings.rpc_url))
        appended_before, _ = _pending(city)
        stored_before = sum(stored for stored, _ in city.telemetry().values())
        pid = city.anvil_pid()
        progress(f"chain frozen (SIGSTOP) for {options.seconds:g} s")
        stopped_at = time.time()
        if not kill(pid, signal.SIGSTOP):
            raise ConfigError("the campaign's chain is not running: nothing to stop")
        try:
            while time.time() < stopped_at + options.seconds:
                report.pending_max = max(report.pending_max, _pending(city)[1])
                time.sleep(1.0)
            appended_after, _ = _pending(city)
            telemetry_at_resume = city.telemetry()
        finally:
            kill(pid, signal.SIGCONT)
        resumed_at = time.time()
        report.queued = appended_after - appended_before
        report.readings_during_outage = sum(stored for stored, _ in telemetry_at_resume.values()) - stored_before
        progress("chain back: waiting for the backlog to drain")
        _drain(city, report, resumed_at, {a: stored for a, (stored, _) in telemetry_at_resume.items()})
        # a frozen node mines nothing: no block may carry a time inside the outage
        report.landed_during_outage = sum(1 for t in city.block_times(head_before)
                                          if stopped_at + 1 < t < resumed_at - 1)
        try:
            out, _ = scenario.communicate(timeout=options.seconds + 600)
            report.scenario = dict(json.loads(out).get("faults", {}))
        except (subprocess.TimeoutExpired, ValueError):
            scenario.kill()
            scenario.communicate()
        _check_commands(city, report, stopped_at, resumed_at)
        report.ending = city.ending(progress)
    return report


def _drain(city: City, report: ChainDownReport, resumed_at: float, stored: dict[str, int]) -> None:
    """Until every reading an oracle had stored when the chain came back is sealed into a batch whose root
    is queued, and every outbox holds nothing the chain lacks; timed from the thaw, in wall seconds."""
    def _empty() -> bool:
        telemetry = city.telemetry()
        return all(telemetry.get(a, (0, 0))[1] >= n for a, n in stored.items()) and city.drained()

    report.drained = wait_for(_empty, DRAIN_TIMEOUT_S, interval_s=0.2)
    if report.drained:
        report.drain_s = round(time.time() - resumed_at, 2)


def _check_commands(city: City, report: ChainDownReport, start: float, end: float) -> None:
    from chain.connect import connect
    from chain.quorum import QuorumClient

    lines: list[str] = []
    for log in (city.home / "run" / "logs").glob("twin-*.log"):
        lines += log.read_text(errors="replace").splitlines()
    during, proposals = commands_in_window(lines, start, end)
    report.commands_during_outage = during
    report.decided_commands = len(proposals)
    client, _ = connect(city.settings)
    quorum = QuorumClient(client)
    for proposal in sorted(set(proposals)):
        if quorum.view(proposal).state not in ("executed", "closed"):
            report.commands_without_quorum.append(f"proposal {proposal}")
