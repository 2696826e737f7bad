"""`GET /indicators`, `GET /countermeasures`: the threat intelligence the sectors' gateways enforce.

Both are recounted from chain data, never read from a payload's word (`chain.indicators`,
`chain.countermeasures`): an indicator counts only if its source sector's quorum of Active oracles
cited intrusion verdicts that name it, a countermeasure only if it follows such an indicator of its
own sector. An indicator is listed with its state: in force, withdrawn (a counting withdrawal came
after it), expired, or not counted (a publication the recount rejects, with why). Indicators are
city-wide: every sector's gateways enforce every one in force, so any token reads them all (the
`sector` filter is the sector whose quorum published it). Countermeasures act on one sector's own
devices, so an operator reads its own sector's only.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.auth import Principal, require
from api.deps import Db
from api.errors import ErrorBody
from api.routers._ops import Cursor, Limit, Page, at_time, history, page, readable_sectors, sector_filter
from chain.countermeasures import CountermeasureRecord, active_countermeasures
from chain.indicators import IndicatorRecord, indicator_records
from chain.registry_history import Position

router = APIRouter(tags=["intel"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

Reader = Annotated[Principal, Depends(require("auditor", "operator", "governor"))]
IndicatorState = Literal["in-force", "withdrawn", "expired", "not-counted"]


class IndicatorView(BaseModel):
    id: str
    kind: str | None
    value: str | None
    state: IndicatorState
    source_sector: str | None
    confidence: int | None
    first_seen: str | None
    expires: str | None
    description: str | None
    published_block: int
    published: datetime | None
    withdrawn_block: int | None
    withdrawal_reason: str | None
    required: int  # the source sector's quorum at the publication (recomputed, never the payload's)
    matching: int  # distinct Active oracles whose cited verdicts name it
    evidence: list[str]  # "oracle:seq" of the cited intrusion verdicts
    why_not_counted: str | None


class IndicatorList(Page):
    items: list[IndicatorView]


class CountermeasureView(BaseModel):
    id: str
    type: str  # quarantine-device | safe-mode
    sector: str
    devices: list[str]
    indicators: list[str]
    reason: str | None
    applied_block: int
    applied: datetime | None


class CountermeasureList(Page):
    items: list[CountermeasureView]


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return None if value is None else str(value)


def _view(record: IndicatorRecord, state: IndicatorState, withdrawal: IndicatorRecord | None) -> IndicatorView:
    body = record.body
    confidence = body.get("confidence")
    return IndicatorView(
        id=record.id, kind=_text(body, "kind"), value=_text(body, "value"), state=state,
        source_sector=_text(body, "source_sector"),
        confidence=confidence if isinstance(confidence, int) and not isinstance(confidence, bool) else None,
        first_seen=_text(body, "first_seen"), expires=_text(body, "expires"), description=_text(body, "description"),
        published_block=record.block, published=at_time(record.timestamp),
        withdrawn_block=None if withdrawal is None else withdrawal.block,
        withdrawal_reason=None if withdrawal is None else _text(withdrawal.body, "reason"),
        required=record.required, matching=record.matching, evidence=list(record.evidence),
        why_not_counted=record.reason or None)


def indicator_views(records: list[IndicatorRecord], now: datetime) -> list[tuple[Position, IndicatorView]]:
    """Each counting publication (the latest of its id) with its state at `now`, and every publication that
    does not count, in chain order of publication."""
    latest: dict[str, IndicatorRecord] = {}
    withdrawn: dict[str, IndicatorRecord] = {}
    rejected: list[IndicatorRecord] = []
    for record in records:
        if record.state == "published" and not record.counts:
            rejected.append(record)
        elif record.counts and record.state == "published":
            latest[record.id] = record
            withdrawn.pop(record.id, None)
        elif record.counts and record.state == "withdrawn" and record.id in latest:
            withdrawn[record.id] = record
    views: list[tuple[Position, IndicatorView]] = []
    for ident, record in latest.items():
        expires = record.expires()
        state: IndicatorState = ("withdrawn" if ident in withdrawn else
                                 "expired" if expires is not None and expires <= now else "in-force")
        views.append((record.position, _view(record, state, withdrawn.get(ident))))
    views += [(r.position, _view(r, "not-counted", None)) for r in rejected]
    views.sort(key=lambda item: item[0])
    return views


@router.get("/indicators", response_model=IndicatorList,
            summary="Indicators of compromise: in force, withdrawn, expired, or not counted (and why)",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def list_indicators(_who: Reader, db: Db,
                    state: Annotated[IndicatorState | None, Query(description="only indicators in this state")] = None,
                    sector: Annotated[str | None, Query(max_length=32, description="the publishing sector")] = None,
                    limit: Limit = 100, cursor: Cursor = None) -> IndicatorList:
    chosen_sector = sector_filter(Principal(role="auditor", label="indicators are city-wide"), sector)
    views = indicator_views(indicator_records(db, history(db)), datetime.now(UTC))
    rows = [(p, v) for p, v in views if (state is None or v.state == state)
            and (chosen_sector is None or v.source_sector == chosen_sector)]
    items, after = page(rows, lambda item: item[0], limit, cursor)
    return IndicatorList(items=[v for _, v in items], next_cursor=after)


def _timestamp(db: sqlite3.Connection, position: Position) -> int | None:
    row = db.execute("SELECT timestamp FROM events WHERE block = ? AND log_index = ?", position).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _measure(db: sqlite3.Connection, record: CountermeasureRecord) -> CountermeasureView:
    body = record.body
    devices = [str(body["device"])] if isinstance(body.get("device"), str) else \
        [str(d) for d in body.get("devices") or [] if isinstance(d, str)]
    indicators = [str(body["indicator"])] if isinstance(body.get("indicator"), str) else \
        [str(i) for i in body.get("indicators") or [] if isinstance(i, str)]
    return CountermeasureView(id=record.id, type=str(body.get("type")), sector=str(body.get("sector")),
                              devices=devices, indicators=indicators, reason=_text(body, "reason"),
                              applied_block=record.block, applied=at_time(_timestamp(db, record.position)))


@router.get("/countermeasures", response_model=CountermeasureList,
            summary="Countermeasures in force (device quarantines, safe modes), per sector",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def list_countermeasures(who: Reader, db: Db,
                         sector: Annotated[str | None, Query(max_length=32, description="a sector's name")] = None,
                         limit: Limit = 100, cursor: Cursor = None) -> CountermeasureList:
    wanted = readable_sectors(who, sector)
    active = active_countermeasures(db, history(db), datetime.now(UTC))
    rows = sorted((r for r in active.values() if wanted(str(r.body.get("sector")))), key=lambda r: r.position)
    items, after = page(rows, lambda r: r.position, limit, cursor)
    return CountermeasureList(items=[_measure(db, r) for r in items], next_cursor=after)

