"""Was anything lost or applied twice? Checks over the ledger's events, as `qeaims audit events` lists them.

Pure functions over the event list (chain order, oldest first) so that each check can be shown to
fail on a doctored list (`tests/crash/test_crash_checks.py`). What each one means:

- event ids: an event is (recorder, seq). The same id twice is a duplicate; a seq missing from
  1..last is a lost event; seqs of one recorder out of chain order mean its backlog was not
  drained in the order it was queued.
- verdicts: one oracle's verdict (anomaly, fault, intrusion) about one episode is recorded once;
  twice means a restarted oracle judged the same readings again.
- decisions: each controller step (its plan, cascade analysis, applied isolation, dispatch, repair,
  restore, reintegration) for one quorum proposal is recorded once.
- telemetry: each oracle's anchored batches are numbered 1..n without a gap or repeat (the ledger);
  and every oracle's store (`check_coverage`, over the (sensor, field time) of each reading stored,
  which `qeaims audit verify` checks against the anchored roots) holds each sensor once a report
  period, with no period missing between its first and its last: a twin, broker or oracle that
  dropped or repeated a period, or a single reading, shows. Readings may be stored out of field-time
  order (a late envelope opens once: `links.session.REPLAY_WINDOW`), so the batches' time spans may
  overlap and are not checked against each other (they were until session 40).
- outboxes: once drained, a recorder's outbox holds nothing the chain lacks (its last seq is the
  ledger's `lastSeq`, nothing pending).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Ending", "LedgerCheck", "check_coverage", "check_ledger", "check_outboxes"]

VERDICT_KINDS = frozenset({"anomaly", "fault", "intrusion"})
STEP_KINDS = frozenset({"reroute-plan", "cascade-analysis", "isolation-applied", "repair-dispatched", "repaired",
                        "reintegrated"})


@dataclass
class LedgerCheck:
    events: int = 0
    recorders: int = 0
    duplicate_ids: list[str] = field(default_factory=list)  # "recorder#seq"
    lost_ids: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    duplicate_verdicts: list[str] = field(default_factory=list)
    duplicate_decisions: list[str] = field(default_factory=list)
    telemetry_batches: int = 0
    telemetry_readings: int = 0
    telemetry_problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.lost_ids)

    @property
    def duplicates(self) -> int:
        return len(self.duplicate_ids) + len(self.duplicate_verdicts) + len(self.duplicate_decisions)

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """Every finding, one line each: duplicates, lost events, disorder, telemetry."""
        return [*self.lost_ids, *self.duplicate_ids, *self.out_of_order, *self.duplicate_verdicts,
                *self.duplicate_decisions, *self.telemetry_problems]

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "lost": self.lost, "duplicates": self.duplicates, "ok": self.ok}


@dataclass
class Ending:
    """What both campaigns check once the city has drained: the outboxes against the ledger, the
    ledger's events (`check_ledger`) and `qeaims audit verify`'s answer."""

    outbox_problems: list[str] = field(default_factory=list)
    ledger: LedgerCheck = field(default_factory=LedgerCheck)
    audit: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (self.ledger.ok and not self.outbox_problems and not self.audit.get("invalid")
                and not self.audit.get("problems"))

    @property
    def events_lost(self) -> int:
        return self.ledger.lost + len(self.outbox_problems)

    def problems(self) -> list[str]:
        return [*self.ledger.problems(), *self.outbox_problems]

    def audit_summary(self) -> str:
        return f"{self.audit.get('valid')} valid, {len(self.audit.get('invalid') or [])} invalid"

    def as_json(self) -> dict[str, Any]:
        """The report keys both campaigns share."""
        return {"events_lost": self.events_lost, "duplicates": self.ledger.duplicates,
                "ledger": self.ledger.as_json(), "outbox_problems": self.outbox_problems,
                "audit": {k: self.audit.get(k) for k in ("events", "batches", "valid", "invalid", "problems")}}


def _short(account: str) -> str:
    return account[:10]


def check_ledger(events: Sequence[Mapping[str, Any]]) -> LedgerCheck:
    """`events` in chain order."""
    out = LedgerCheck(events=len(events))
    by_recorder: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        by_recorder[str(event["oracle"]).lower()].append(event)
    out.recorders = len(by_recorder)
    for account, mine in by_recorder.items():
        _check_ids(out, account, [int(e["seq"]) for e in mine])
        _check_semantics(out, account, mine)
        roots = [e for e in mine if e["kind"] == "telemetry-root"]
        if roots:
            _check_telemetry(out, account, [dict(e["payload"]) for e in roots])
    return out


def _check_ids(out: LedgerCheck, account: str, seqs: list[int]) -> None:
    counts = Counter(seqs)
    out.duplicate_ids += [f"{_short(account)}#{s}" for s, n in sorted(counts.items()) if n > 1]
    out.lost_ids += [f"{_short(account)}#{s}" for s in range(1, max(seqs, default=0) + 1) if s not in counts]
    for before, after in itertools.pairwise(seqs):
        if after < before:
            out.out_of_order.append(f"{_short(account)}: #{after} on chain after #{before}")


def _check_semantics(out: LedgerCheck, account: str, mine: Iterable[Mapping[str, Any]]) -> None:
    verdicts: Counter[tuple[str, str]] = Counter()
    steps: Counter[tuple[str, str, str]] = Counter()
    for event in mine:
        body = event.get("payload")
        if not isinstance(body, dict):
            continue
        if event["kind"] in VERDICT_KINDS and body.get("episode"):
            verdicts[(str(event["kind"]), str(body["episode"]))] += 1
        elif event["kind"] in STEP_KINDS and body.get("proposal") is not None:
            steps[(str(event["kind"]), str(body["proposal"]), str(body.get("step", "")))] += 1
    out.duplicate_verdicts += [f"{_short(account)}: {k} {ep} ×{n}" for (k, ep), n in verdicts.items() if n > 1]
    out.duplicate_decisions += [f"{_short(account)}: {k} proposal {p} step {s or '-'} ×{n}"
                                for (k, p, s), n in steps.items() if n > 1]


def _check_telemetry(out: LedgerCheck, account: str, roots: list[dict[str, Any]]) -> None:
    who = _short(account)
    numbers = [int(r["batch"]) for r in roots]
    if numbers != list(range(1, len(numbers) + 1)):
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        repeated = sorted(n for n, c in Counter(numbers).items() if c > 1)
        out.telemetry_problems.append(f"{who}: telemetry batches not 1..n (missing {missing[:5]}, "
                                      f"repeated {repeated[:5]})")
    out.telemetry_batches += len(roots)
    out.telemetry_readings += sum(int(r["count"]) for r in roots)


def check_coverage(store: str, stored: int, seen: Sequence[tuple[int, int]], period_ms: int) -> list[str]:
    """One oracle's store: `stored` readings, `seen` the (sensor, field time in ms) of each. Every
    sensor once a period, no period missing between the first and the last (which may be partial:
    the twin was stopped while its last period travelled)."""
    who = store[:10]
    problems: list[str] = []
    if stored != len(seen):
        problems.append(f"{who}: {stored} readings stored but {len(seen)} (sensor, time) pairs: one stored twice")
    if not seen:
        return problems
    per_time = Counter(t for _, t in seen)
    sensors = len({s for s, _ in seen})
    times = sorted(per_time)
    first, last = times[0], times[-1]
    expected = (last - first) // period_ms + 1
    missing = expected - len(times)
    if missing > 0 or any((t - first) % period_ms for t in times):
        problems.append(f"{who}: {missing} report periods missing between {first} and {last} (ms)")
    short = [t for t in times[:-1] if per_time[t] != sensors]
    if short:
        lost = sum(sensors - per_time[t] for t in short)
        problems.append(f"{who}: {len(short)} report periods without every one of its {sensors} sensors "
                        f"({lost} readings lost), the first at {short[0]} ms")
    return problems


def check_outboxes(outboxes: Iterable[tuple[str, int, int]], ledger: Mapping[str, int]) -> list[str]:
    """(account, outbox last seq, pending) against the ledger's `lastSeq`: what was queued and not recorded."""
    problems = []
    for account, last_seq, pending in outboxes:
        on_chain = ledger.get(account.lower())
        if on_chain is None:
            continue
        if last_seq != on_chain or pending:
            problems.append(f"{_short(account)}: outbox up to #{last_seq} ({pending} pending), ledger up to "
                            f"#{on_chain}")
    return problems
