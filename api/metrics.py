"""Prometheus metrics: what the chain says, computed at scrape time from the API's index, and how fast
the API answers.

Nothing is counted in memory: a restarted server reports the same totals, equal to what an auditor
counts from the chain's logs. The index-derived families are computed once per indexed block (cached
on the index's `last_block`), so a scrape costs one small query while the chain is idle.

- `qeaims_events_total{sector,kind}`: ledger events by the recording oracle's registered sector;
- `qeaims_verdicts_total{sector,verdict}`: the detector verdicts among them (anomaly, fault, intrusion,
  maintenance);
- `qeaims_isolations_total{sector}`: the registry's node status changes to *isolated* (by quorum or by
  a council override alike);
- `qeaims_votes_total{action}`: isolation-quorum votes by the proposal's action;
- `qeaims_chain_height`: the last block the index holds (the follower keeps it at the head);
- `qeaims_follower_sync_age_seconds`: seconds since the follower's last successful sync (grows while the
  chain is down; absent when the app does not follow the chain);
- `qeaims_oracle_lag_seconds{sector,stat}`: over a sector's last `LAG_WINDOW` verdict events, the block's
  timestamp minus the verdict's own `observed_at`: how long after the observation the chain holds the
  verdict (detection, batching and mining; whole seconds, as block times are); `stat` is `last` or `p95`;
- `qeaims_stream_clients`: connected `GET /stream` clients;
- `qeaims_http_request_duration_seconds{method,route,status}`: time to the response's first byte, by
  route template (never the raw path: no unbounded label values).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.app import API_PREFIX
from api.context import ApiContext
from api.live.hub import Hub
from core.kinds import kind_name
from keys.errors import KeysError
from keys.ids import from_bytes32

__all__ = ["LAG_WINDOW", "IndexCollector", "LatencyMiddleware", "make_registry"]

LAG_WINDOW = 200
VERDICT_KINDS = ("anomaly", "fault", "intrusion", "maintenance")
_ACTIONS = {0: "isolate", 1: "reintegrate", 2: "quarantine"}


def _name(hex32: str | None) -> str:
    if not hex32:
        return ""
    try:
        return from_bytes32(bytes.fromhex(hex32[2:]))
    except (KeysError, ValueError):
        return hex32


def _observed(payload: bytes) -> float | None:
    try:
        text = json.loads(bytes(payload).decode())["observed_at"]
        stamp = datetime.fromisoformat(str(text))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


class IndexCollector:
    """The chain-derived families, read from the API's index at scrape time."""

    def __init__(self, ctx: ApiContext, hub: Hub, sync_age: Callable[[], float | None] | None = None) -> None:
        self.ctx = ctx
        self.hub = hub
        self.sync_age = sync_age
        self._lock = threading.Lock()
        self._cached: tuple[str, list[Metric]] | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # families are known only at scrape; nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        clients = GaugeMetricFamily("qeaims_stream_clients", "Connected GET /stream clients")
        clients.add_metric([], self.hub.clients)
        yield clients
        if self.sync_age is not None:
            age = self.sync_age()
            if age is not None:
                family = GaugeMetricFamily("qeaims_follower_sync_age_seconds",
                                           "Seconds since the chain follower's last successful sync")
                family.add_metric([], age)
                yield family
        yield from self._from_index()

    def _from_index(self) -> list[Metric]:
        if not self.ctx.index_path.exists():
            return []
        db = sqlite3.connect(f"file:{self.ctx.index_path}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'last_block'").fetchone()
            head = str(row[0]) if row else "-1"
            with self._lock:
                if self._cached is not None and self._cached[0] == head:
                    return self._cached[1]
            families = self._compute(db, int(head))
            with self._lock:
                self._cached = (head, families)
            return families
        except sqlite3.OperationalError:  # an index still being created: no chain figures this scrape
            return []
        finally:
            db.close()

    def _compute(self, db: sqlite3.Connection, head: int) -> list[Metric]:
        events = CounterMetricFamily("qeaims_events", "Ledger events by the recording oracle's sector and kind",
                                     labels=["sector", "kind"])
        verdicts = CounterMetricFamily("qeaims_verdicts", "Detector verdicts recorded on the ledger",
                                       labels=["sector", "verdict"])
        for sector_hex, kind, count in db.execute(
                "SELECT k.sector, e.kind, count(*) FROM events e LEFT JOIN oracle_keys k "
                "ON k.oracle = e.oracle AND k.epoch = 1 GROUP BY k.sector, e.kind ORDER BY 1, 2"):
            sector, name = _name(sector_hex), kind_name(int(kind))
            events.add_metric([sector, name], int(count))
            if name in VERDICT_KINDS:
                verdicts.add_metric([sector, name], int(count))
        isolations = CounterMetricFamily("qeaims_isolations", "Nodes the registry set to isolated",
                                         labels=["sector"])
        for sector_hex, count in db.execute(
                "SELECT json_extract(args, '$.sector'), count(*) FROM logs WHERE contract = 'Registry' "
                "AND event = 'NodeStatusChanged' AND json_extract(args, '$.to') = 2 GROUP BY 1 ORDER BY 1"):
            isolations.add_metric([_name(sector_hex)], int(count))
        actions = {int(pid): _ACTIONS.get(int(action), str(action)) for pid, action in db.execute(
            "SELECT json_extract(args, '$.proposalId'), json_extract(args, '$.action') FROM logs "
            "WHERE contract = 'IsolationQuorum' AND event = 'ProposalCreated'")}
        by_action: dict[str, int] = {}
        for pid, count in db.execute(
                "SELECT json_extract(args, '$.proposalId'), count(*) FROM logs WHERE contract = 'IsolationQuorum' "
                "AND event = 'VoteCast' GROUP BY 1"):
            action = actions.get(int(pid), "unknown")
            by_action[action] = by_action.get(action, 0) + int(count)
        votes = CounterMetricFamily("qeaims_votes", "Isolation-quorum votes by the proposal's action",
                                    labels=["action"])
        for action, count in sorted(by_action.items()):
            votes.add_metric([action], count)
        height = GaugeMetricFamily("qeaims_chain_height", "The last block in the API's index")
        height.add_metric([], head)
        return [events, verdicts, isolations, votes, height, self._lag(db)]

    def _lag(self, db: sqlite3.Connection) -> Metric:
        lag = GaugeMetricFamily("qeaims_oracle_lag_seconds",
                                "Block time minus a verdict's observed_at, over each sector's latest verdicts",
                                labels=["sector", "stat"])
        kinds = [i for i in range(64) if kind_name(i) in VERDICT_KINDS]
        per_sector: dict[str, list[float]] = {}
        rows = db.execute(
            f"SELECT k.sector, e.payload, e.timestamp FROM events e LEFT JOIN oracle_keys k "
            f"ON k.oracle = e.oracle AND k.epoch = 1 WHERE e.kind IN ({','.join('?' * len(kinds))}) "
            f"AND e.timestamp IS NOT NULL ORDER BY e.block DESC, e.log_index DESC LIMIT ?",
            (*kinds, LAG_WINDOW * 8))
        for sector_hex, payload, stamp in rows:
            sector = _name(sector_hex)
            observed = _observed(payload)
            seen = per_sector.setdefault(sector, [])
            if observed is not None and len(seen) < LAG_WINDOW:
                seen.append(float(stamp) - observed)
        for sector, values in sorted(per_sector.items()):
            if values:
                lag.add_metric([sector, "last"], values[0])
                lag.add_metric([sector, "p95"], _p95(values))
        return lag


class LatencyMiddleware:
    """Times each HTTP request to its response's first byte, labelled by route template and status."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        observed = False

        async def timed(message: Message) -> None:
            nonlocal observed
            if message["type"] == "http.response.start" and not observed:
                observed = True
                template = _template(scope)
                self.histogram.labels(scope["method"], template, f"{int(message['status']) // 100}xx").observe(
                    time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, timed)


def _template(scope: Scope) -> str:
    """The matched route's template with the API's prefix (FastAPI's route keeps its unprefixed path)."""
    route: Any = scope.get("route")
    path: str | None = getattr(route, "path", None)
    if path is None:
        return "unmatched"
    if scope["path"].startswith(API_PREFIX + "/") and not path.startswith(API_PREFIX + "/"):
        return API_PREFIX + path
    return path


def make_registry(ctx: ApiContext, hub: Hub,
                  sync_age: Callable[[], float | None] | None = None) -> tuple[CollectorRegistry, Histogram]:
    """A registry of the app's own (tests make many apps; the process-wide one would collide)."""
    registry = CollectorRegistry()
    registry.register(IndexCollector(ctx, hub, sync_age))
    histogram = Histogram("qeaims_http_request_duration_seconds", "Time to the response's first byte",
                          ["method", "route", "status"], registry=registry)
    return registry, histogram
