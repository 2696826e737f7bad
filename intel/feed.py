"""Indicators in force, picked up from the chain by every sector's gateways and oracles.

`IndicatorFeed` keeps a small index of the chain's logs of its own (`chain.indexer`, incremental), and on
each `poll` recounts every publication and every countermeasure (`chain.countermeasures`: a device
quarantine or a sector's safe mode, handed to the enforcers of that sector) (`chain.indicators.active_indicators`: nothing is taken on the
publisher's word) and hands the set in force to its enforcers: each new indicator is applied once,
each withdrawn or expired one lifted once. A poll costs one ``eth_getLogs`` of the new blocks (more if they are more than the node's range: `chain.logs`) and a
recount over the index; `run` polls on a thread every ``interval_s`` (0.5 s: well inside the 5 s
within which every sector must enforce what one sector published).

Propagation is measured here, per enforcer: from the publication's block time (whole seconds on
Anvil, so the figure is an upper bound by up to a second) to the moment the enforcer applied it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from chain.client import ChainClient
from chain.connect import contract_abis
from chain.countermeasures import CountermeasureRecord, active_countermeasures
from chain.indexer import Indexer
from chain.indicators import IndicatorRecord, in_force, indicator_records
from chain.logs import DEFAULT_MAX_LOGS_RANGE
from chain.manifest import Deployment
from chain.registry_history import RegistryHistory
from core.errors import ChainError
from intel.indicator import Indicator, parse_indicator

__all__ = ["Enforcer", "FeedStats", "IndicatorFeed", "indicator_of"]


def indicator_of(record: IndicatorRecord) -> Indicator:
    """The indicator a counting publication carries (its fields were checked by the recount)."""
    return parse_indicator({k: record.body[k] for k in ("kind", "value", "confidence", "source_sector",
                                                         "first_seen", "expires", "description")},
                           allow_expired=True)


@dataclass
class Enforcer:
    """Where indicators take effect: ``apply`` when one comes into force, ``lift`` when it leaves; and, for
    an enforcer of one ``sector``, that sector's countermeasures (``countermeasure(record, in_force)``)."""

    name: str
    apply: Callable[[Indicator], None]
    lift: Callable[[Indicator], None]
    sector: str = ""
    countermeasure: Callable[[CountermeasureRecord, bool], None] | None = None
    applied: dict[str, float] = field(default_factory=dict)  # id → wall time applied
    measures: dict[str, float] = field(default_factory=dict)  # countermeasure id → wall time applied


@dataclass
class FeedStats:
    polls: int = 0
    errors: int = 0
    propagation_s: list[float] = field(default_factory=list)  # block time of publication → applied, per enforcer


class IndicatorFeed:
    def __init__(self, client: ChainClient, deployment: Deployment, index_path: Path, *,
                 interval_s: float = 0.5, clock: Callable[[], float] = time.time,
                 max_logs_range: int = DEFAULT_MAX_LOGS_RANGE) -> None:
        self.index = Indexer(index_path, client.rpc, deployment, contract_abis(), max_logs_range=max_logs_range)
        self.interval_s = interval_s
        self.enforcers: list[Enforcer] = []
        self.in_force: dict[str, tuple[Indicator, IndicatorRecord]] = {}
        self.countermeasures_seen: dict[str, CountermeasureRecord] = {}
        self.stats = FeedStats()
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, enforcer: Enforcer) -> Enforcer:
        with self._lock:
            self.enforcers.append(enforcer)
            for ident, (indicator, record) in self.in_force.items():
                self._apply(enforcer, ident, indicator, record)
        return enforcer

    def poll(self) -> dict[str, Indicator]:
        """Sync the index, recount, apply what came into force and lift what left; the set in force."""
        with self._lock:
            self.stats.polls += 1
            self.index.sync()
            now = datetime.now(UTC)
            history = RegistryHistory.from_db(self.index.db)
            records = indicator_records(self.index.db, history)
            active = in_force(records, now)
            self._countermeasures(active_countermeasures(self.index.db, history, now, indicators=records))
            for ident in sorted(set(self.in_force) - set(active)):
                indicator, _ = self.in_force.pop(ident)
                for enforcer in self.enforcers:
                    if enforcer.applied.pop(ident, None) is not None:
                        enforcer.lift(indicator)
            for ident, record in sorted(active.items()):
                known = self.in_force.get(ident)
                if known is not None and (known[1].oracle, known[1].seq) != (record.oracle, record.seq):
                    for enforcer in self.enforcers:  # republished: applied again, with its new expiry
                        enforcer.applied.pop(ident, None)
                    known = None
                if known is None:
                    self.in_force[ident] = (indicator_of(record), record)
                indicator, current = self.in_force[ident]
                for enforcer in self.enforcers:
                    self._apply(enforcer, ident, indicator, current)
            return {i: ind for i, (ind, _) in self.in_force.items()}

    def _countermeasures(self, active: dict[str, CountermeasureRecord]) -> None:
        for enforcer in self.enforcers:
            if enforcer.countermeasure is None:
                continue
            for ident in sorted(set(enforcer.measures) - set(active)):
                del enforcer.measures[ident]
                lifted = self.countermeasures_seen.get(ident)
                if lifted is not None:
                    enforcer.countermeasure(lifted, False)
            for ident, record in sorted(active.items()):
                if record.body.get("sector") == enforcer.sector and ident not in enforcer.measures:
                    enforcer.countermeasure(record, True)
                    enforcer.measures[ident] = self._clock()
        self.countermeasures_seen.update(active)

    def _apply(self, enforcer: Enforcer, ident: str, indicator: Indicator, record: IndicatorRecord) -> None:
        if ident in enforcer.applied:
            return
        enforcer.apply(indicator)
        at = self._clock()
        enforcer.applied[ident] = at
        if record.timestamp is not None:
            self.stats.propagation_s.append(max(0.0, at - record.timestamp))

    def run(self) -> None:
        """Poll on a daemon thread until `stop`; a chain that does not answer is retried next interval."""
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.poll()
                except ChainError:
                    self.stats.errors += 1
                self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=loop, name="indicator-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.index.close()
