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
- telemetry: each oracle's anchored batches are numbered 1..n without a gap or repeat, each batch's
  readings start in the report period after the previous batch's last (or in that same period, when a
  batch was sealed part-way through a period), and the readings divide evenly over the periods they
  span (every sensor once a period): a twin or broker that dropped or repeated a period, or a single
  reading, shows.
- outboxes: once drained, a recorder's outbox holds nothing the chain lacks (its last seq is the
  ledger's `lastSeq`, nothing pending).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Ending", "LedgerCheck", "check_ledger", "check_outboxes"]

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


def check_ledger(events: Sequence[Mapping[str, Any]], periods_s: Mapping[str, float]) -> LedgerCheck:
    """`events` in chain order; `periods_s`: each sector's report period (`sectors.runner.REPORT_PERIOD_S`)."""
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
            period = periods_s.get(str(roots[0].get("sector", "")))
            _check_telemetry(out, account, [dict(e["payload"]) for e in roots], period)
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


def _time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _check_telemetry(out: LedgerCheck, account: str, roots: list[dict[str, Any]], period: float | None) -> None:
    who = _short(account)
    numbers = [int(r["batch"]) for r in roots]
    if numbers != list(range(1, len(numbers) + 1)):
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        repeated = sorted(n for n, c in Counter(numbers).items() if c > 1)
        out.telemetry_problems.append(f"{who}: telemetry batches not 1..n (missing {missing[:5]}, "
                                      f"repeated {repeated[:5]})")
    out.telemetry_batches += len(roots)
    out.telemetry_readings += sum(int(r["count"]) for r in roots)
    if not period:
        return
    previous_last: float | None = None
    for root in roots:
        first = _time(str(root["first"]))
        # a batch starts in the period after the previous one's last, or in that same period when a
        # batch was sealed part-way through a period's readings
        if previous_last is not None and not (abs(first - previous_last) < 1e-6
                                              or abs(first - previous_last - period) < 1e-6):
            gap = (first - previous_last) / period - 1
            what = f"{gap:.0f} report periods missing" if gap > 0 else "it overlaps the batch before"
            out.telemetry_problems.append(f"{who}: batch {root['batch']} starts at {root['first']}: {what}")
        previous_last = _time(str(root["last"]))
    spanned = round((_time(str(roots[-1]["last"])) - _time(str(roots[0]["first"]))) / period) + 1
    readings = sum(int(r["count"]) for r in roots)
    if readings % spanned:
        out.telemetry_problems.append(f"{who}: {readings} readings over {spanned} report periods is not a whole "
                                      "number per period: readings were lost or repeated")


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
