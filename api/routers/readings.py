"""`GET /readings/{sector}/{asset}`: an asset's recent readings beside its anomaly and fault scores.

The technical view draws, for an asset tapped on a sector's network, its sensors' newest readings and
the scores the oracles' verdicts gave it (issue 19). Readings are not on-chain (only their Merkle roots
are): they are read from the telemetry store of one of the sector's oracles under the API's data
directory, read-only (`oracles.telemetry_view`), among the store's newest arrivals (a bounded scan).
The oracle is the first of the sector's Active oracles, in registration order, whose store exists; the
answer names it. No store: the readings are empty and `oracle` is null, the scores are still given.

Scores come from the index: the sector's recorded ``anomaly`` and ``fault`` events whose payload names
the asset (`chain.event_query`, newest first, a bounded look-back), each with its threshold, so a page
can mark where a score crossed it.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import UTC, datetime
from pathlib import Path as FsPath  # fastapi's Path is the path parameter's
from typing import Annotated

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from api.auth import Principal, require, require_sector
from api.deps import Ctx, Db
from api.errors import ErrorBody
from api.routers._ops import history, name_of
from chain.event_query import EventFilters, query_events
from chain.registry_history import ACTIVE
from core.kinds import kind_by_name
from oracles.telemetry import telemetry_path
from oracles.telemetry_chunks import ChunkDamaged
from oracles.telemetry_codec import iso_ms
from oracles.telemetry_view import SCAN, StoredReading, recent_readings
from sectors.plugin import plugin_of

router = APIRouter(tags=["readings"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

Reader = Annotated[Principal, Depends(require("auditor", "operator", "governor"))]
MAX_SENSORS = 24  # series per answer; the page draws the first six
SCORE_LOOKBACK = 2_000  # newest anomaly and fault events of the sector looked at, each kind
MAX_SCORES = 200
_VERDICTS = ("anomaly", "fault")


class SensorSeries(BaseModel):
    sensor: str
    quantity: str
    unit: str
    time_ms: list[int] = Field(description="each reading's time, milliseconds since the Unix epoch (UTC), oldest first")
    values: list[float]
    first: str  # ISO 8601 UTC of the oldest reading shown
    last: str


class VerdictScore(BaseModel):
    kind: str  # anomaly | fault
    verdict: str | None  # the payload's verdict (anomaly, fault, intrusion ...)
    score: float | None
    threshold: float | None
    sensors: list[str]
    observed_at: str | None  # the reading time the verdict judged (payload)
    time: str | None  # the block time it was recorded
    oracle: str
    block: int
    log_index: int


class AssetReadings(BaseModel):
    sector: str
    asset: str
    oracle: str | None = Field(description="the oracle whose telemetry store was read (checksummed); null: none")
    scanned: int = Field(description="how many of the store's newest arrivals were looked at, at most")
    sensors: list[SensorSeries]
    scores: list[VerdictScore] = Field(description="the asset's recorded verdict scores, oldest first")


@functools.cache
def _known_assets(sector: str) -> frozenset[str]:
    """The asset ids of a sector's model as the dashboard draws it, and its registered nodes."""
    plugin = plugin_of(sector)
    names = {n.node for n in plugin.nodes}
    if plugin.network is not None:
        drawing = plugin.network()
        names.update(n.id for n in drawing.nodes)
        names.update(e.id for e in drawing.edges)
    return frozenset(names)


def _store_oracle(db: sqlite3.Connection, home: FsPath, sector: str) -> str | None:
    """The first Active oracle of `sector`, in registration order, with a telemetry store under `home`."""
    replayed = history(db)
    found = []
    for account in replayed.oracles():
        steps = replayed.oracle_timeline(account)
        if steps and name_of(steps[-1][1].sector) == sector and steps[-1][1].status == ACTIVE:
            found.append((steps[0][0], account))
    for _, account in sorted(found):
        if telemetry_path(home, account).is_file():
            return str(account)
    return None


def _series(readings: list[StoredReading]) -> list[SensorSeries]:
    by: dict[str, list[StoredReading]] = {}
    for r in readings:
        by.setdefault(r.sensor, []).append(r)
    return [SensorSeries(sensor=name, quantity=rs[0].quantity, unit=rs[0].unit, time_ms=[r.time_ms for r in rs],
                         values=[r.value for r in rs], first=iso_ms(rs[0].time_ms), last=iso_ms(rs[-1].time_ms))
            for name, rs in sorted(by.items())[:MAX_SENSORS]]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _scores(db: sqlite3.Connection, sector: str, asset: str) -> list[VerdictScore]:
    out: list[VerdictScore] = []
    for kind in _VERDICTS:
        rows = query_events(db, EventFilters(sector=sector, kind=kind_by_name(kind)), limit=SCORE_LOOKBACK,
                            newest_first=True)
        for row in rows:
            p = row.payload
            if not isinstance(p, dict) or p.get("asset") != asset:
                continue
            out.append(VerdictScore(
                kind=row.kind, verdict=p.get("verdict") if isinstance(p.get("verdict"), str) else None,
                score=_number(p.get("score")), threshold=_number(p.get("threshold")),
                sensors=[str(s) for s in p.get("sensors", []) if isinstance(s, str)]
                if isinstance(p.get("sensors"), list) else [],
                observed_at=p.get("observed_at") if isinstance(p.get("observed_at"), str) else None,
                time=datetime.fromtimestamp(row.timestamp, UTC).isoformat() if row.timestamp else None,
                oracle=to_checksum_address(row.oracle), block=row.block, log_index=row.log_index))
    out.sort(key=lambda s: (s.block, s.log_index))
    return out[-MAX_SCORES:]


@router.get("/readings/{sector}/{asset}", response_model=AssetReadings,
            summary="An asset's recent readings (per sensor) beside its anomaly and fault scores",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}, 500: {"model": ErrorBody}})
def asset_readings(
        who: Reader, db: Db, ctx: Ctx,
        sector: Annotated[str, Path(max_length=31, description="a sector's name")],
        asset: Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
                                   description="an asset of the sector's model (junction:10, line-3) or a node")],
        sensor: Annotated[str | None, Query(min_length=1, max_length=64, description="only this sensor")] = None,
        limit: Annotated[int, Query(ge=1, le=5000, description="readings at most, all sensors together (1..5000)")]
        = 1000) -> AssetReadings:
    plugin = plugin_of(sector)  # UnknownSector: 404 naming the choices
    require_sector(who, plugin.name)
    if asset not in _known_assets(plugin.name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"sector {plugin.name} has no asset {asset!r} in its model")
    oracle = _store_oracle(db, ctx.settings.home, plugin.name)
    readings: list[StoredReading] = []
    if oracle is not None:
        try:
            readings = recent_readings(telemetry_path(ctx.settings.home, oracle), asset, sensor=sensor, limit=limit)
        except ChunkDamaged as exc:
            raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR,
                                detail=f"the telemetry store of oracle {to_checksum_address(oracle)} is damaged: {exc}"
                                ) from None
    return AssetReadings(sector=plugin.name, asset=asset, oracle=None if oracle is None else to_checksum_address(oracle),
                         scanned=SCAN, sensors=_series(readings), scores=_scores(db, plugin.name, asset))
