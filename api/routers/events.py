"""`GET /events`, `GET /events/export`, `GET /events/{block}/{log_index}`: the recorded history.

Read from the API's own log index (`chain.event_query`, the query `qeaims audit events` runs). Pages
are keyset pages on `(block, log_index)`, the index's primary key: the cursor is the last item's
`BLOCK:LOG_INDEX`, so a page costs the same on a storm day as on a quiet one and a cursor stays valid
while the history grows. One event comes with its evidence: the signed batch that carried it judged
exactly as the audit judges it (key epoch, sequence range, ML-DSA-65 signature; memoised, so a second
look costs a lookup), and the key epoch's place in the oracle's key history.

An operator reads only its own sector: the sector filter defaults to theirs, another one is a 403. An
event's sector is the one the stream gives it (api/live/messages.py): its recording oracle's, except
for the self-healing controller's events (registered in its own `control` sector), which belong to the
sector their payload names, so an operator reads the controller's steps in its sector, and only those.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.auth import Principal, require, require_sector
from api.context import ApiContext
from api.deps import Ctx, Db
from api.errors import ErrorBody
from api.routers._ops import per_head
from api.routers._regulator import (
    check_address,
    check_cursor,
    check_kind,
    check_node,
    check_time,
    sector_for,
)
from chain.audit_keys import KeyEpoch, key_history
from chain.event_query import (
    EventFilters,
    EventRow,
    count_events,
    event_evidence,
    latest_position,
    query_events,
)

router = APIRouter(tags=["events"])

Reader = Annotated[Principal, Depends(require("auditor", "governor", "operator"))]
EXPORT_MAX = 100_000
"""An export carries at most this many events (about 30 MB of CSV): a longer period is narrowed."""
_EXPORT_PAGE = 2_000

_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                                            422: {"model": ErrorBody}, 503: {"model": ErrorBody}}


class EventItem(BaseModel):
    """One recorded event. `cursor` is its position (`BLOCK:LOG_INDEX`), the next page's `cursor`."""

    cursor: str
    block: int
    log_index: int
    tx: str
    time: str | None = Field(description="the block's time, ISO 8601 UTC")
    oracle: str
    seq: int
    kind: str
    node: str
    sector: str = Field(description="the sector the event is about (as the stream says): its recording oracle's, "
                                    "or for the self-healing controller's events the sector their payload names")
    recorder_sector: str = Field(description="the recording oracle's registered sector (`control`: the controller)")
    batch: int
    payload: Any = Field(description="the event's JSON body (its text when it is not JSON)")


class EventPage(BaseModel):
    items: list[EventItem]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class BatchOut(BaseModel):
    """The signed batch that carried the event, judged as `qeaims audit verify` judges it."""

    batch_id: int
    oracle: str
    key_epoch: int
    first_seq: int
    last_seq: int
    count: int
    block: int
    log_index: int
    tx: str
    signature_bytes: int
    verifies: bool
    reason: str = Field(description="why it does not verify; empty when it does")


class KeyOut(BaseModel):
    epoch: int
    key_hash: str
    published_block: int
    valid: bool = Field(description="its chain of trust holds (proof of possession, then every rotation)")
    reason: str
    current_epoch: int


class EventEvidenceOut(BaseModel):
    event: EventItem
    verified: bool = Field(description="the batch verifies and its key epoch is trustworthy")
    batch: BatchOut | None = Field(description="null: the index holds no such batch (itself a finding)")
    key: KeyOut | None


_kept = threading.local()


def _reader(ctx: ApiContext) -> sqlite3.Connection:
    """This worker thread's read-only connection to the index, kept across requests: a new connection
    parses the schema on its first statement and starts with an empty page cache, which was a good part
    of a one-event request. Used only inside an endpoint's body, which runs on one thread from start to
    end (unlike a dependency, which FastAPI may run on another), so no two requests share it. Autocommit
    reads see every commit the follower makes; a new file at the index's path (a deleted, re-created
    index) gets a new connection."""
    if not ctx.index_path.exists():
        ctx.sync()  # as the `Db` dependency does: the first request creates the index
    inode = ctx.index_path.stat().st_ino
    kept: tuple[str, int, sqlite3.Connection] | None = getattr(_kept, "db", None)
    if kept is not None and kept[0] == str(ctx.index_path) and kept[1] == inode:
        return kept[2]
    if kept is not None:
        kept[2].close()
    db = sqlite3.connect(f"file:{ctx.index_path}?mode=ro", uri=True)
    _kept.db = (str(ctx.index_path), inode, db)
    return db


def _key_history(db: sqlite3.Connection, chain_id: int, registry: str) -> dict[str, dict[int, KeyEpoch]]:
    """The oracles' key history, rebuilt once per indexed head (`per_head`) rather than per request: the
    rebuild checksums every oracle's address and hashes every published key, and was most of the time
    `GET /events/{block}/{log_index}` took. A plain dict (not the rebuild's defaultdict): requests share it,
    and a lookup must never add to it."""
    return per_head(db, f"key_history:{chain_id}:{registry.lower()}", lambda: dict(key_history(db, chain_id, registry)))


def _item(row: EventRow) -> EventItem:
    return EventItem(cursor=row.cursor, block=row.block, log_index=row.log_index, tx=row.tx, time=row.time,
                     oracle=row.oracle, seq=row.seq, kind=row.kind, node=row.node, sector=row.about,
                     recorder_sector=row.sector, batch=row.batch, payload=row.payload)


def _filters(who: Principal, sector: str | None, node: str | None, kind: str | None, oracle: str | None,
             since: str | None, until: str | None) -> EventFilters:
    start, end = check_time("since", since), check_time("until", until)
    if start is not None and end is not None and start > end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="since is after until")
    return EventFilters(sector=sector_for(who, sector), node=check_node(node), kind=check_kind(kind),
                        oracle=check_address("oracle", oracle), since=start, until=end, controller_about=True)


SectorQ = Annotated[str | None, Query(description="only events from this sector's oracles (an operator: its own)")]
NodeQ = Annotated[str | None, Query(description="only events about this node, e.g. pump-1")]
KindQ = Annotated[str | None, Query(description="only this kind, e.g. fault")]
OracleQ = Annotated[str | None, Query(description="only this oracle's events (its address)")]
SinceQ = Annotated[str | None, Query(description="from this time: ISO 8601 (naive = UTC) or Unix seconds")]
UntilQ = Annotated[str | None, Query(description="up to this time, inclusive: ISO 8601 or Unix seconds")]


@router.get("/events", response_model=EventPage, summary="Recorded events, filtered, one page at a time",
            responses=_ERRORS)
def list_events(
    who: Reader,
    ctx: Ctx,
    sector: SectorQ = None,
    node: NodeQ = None,
    kind: KindQ = None,
    oracle: OracleQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    cursor: Annotated[str | None, Query(description="the `next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    order: Annotated[Literal["asc", "desc"], Query(description="asc: oldest first; desc: newest first")] = "asc",
) -> EventPage:
    filters = _filters(who, sector, node, kind, oracle, since, until)
    rows = query_events(_reader(ctx), filters, after=check_cursor(cursor), limit=limit + 1, newest_first=order == "desc")
    items = [_item(r) for r in rows[:limit]]
    return EventPage(items=items, next_cursor=items[-1].cursor if len(rows) > limit else None)


def _csv_lines(rows: Iterator[EventRow]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["block", "log_index", "time", "sector", "recorder_sector", "oracle", "seq", "kind", "node",
                     "batch", "tx", "payload"])
    for row in rows:
        writer.writerow([row.block, row.log_index, row.time or "", row.about, row.sector, row.oracle, row.seq,
                         row.kind, row.node, row.batch, row.tx,
                         json.dumps(row.payload, separators=(",", ":"), sort_keys=True)])
        if out.tell() > 64_000:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _json_lines(rows: Iterator[EventRow]) -> Iterator[str]:
    yield "["
    first = True
    for row in rows:
        yield ("" if first else ",\n") + _item(row).model_dump_json()
        first = False
    yield "]\n"


@router.get("/events/export", summary="A period's events as a CSV or JSON download",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, "application/json": {}},
                             "description": "the events, oldest first, as an attachment"}, **_ERRORS})
def export_events(
    who: Reader,
    ctx: Ctx,
    db: Db,
    format: Annotated[Literal["csv", "json"], Query()] = "csv",
    sector: SectorQ = None,
    node: NodeQ = None,
    kind: KindQ = None,
    oracle: OracleQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
) -> StreamingResponse:
    filters = _filters(who, sector, node, kind, oracle, since, until)
    snapshot = latest_position(db)  # events recorded while the download runs are not in it
    total = 0 if snapshot is None else count_events(db, filters, up_to=snapshot)
    if total > EXPORT_MAX:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=f"the period holds {total} events, more than the {EXPORT_MAX} an export carries: "
                                   "narrow since/until")
    path = ctx.index_path

    def rows() -> Iterator[EventRow]:
        if snapshot is None:
            return
        # its own connection: a streamed body is read from several threads, the per-thread one is not ours
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        try:
            after: tuple[int, int] | None = None
            while True:
                page = query_events(conn, filters, after=after, limit=_EXPORT_PAGE, up_to=snapshot)
                yield from page
                if len(page) < _EXPORT_PAGE:
                    return
                after = (page[-1].block, page[-1].log_index)
        finally:
            conn.close()

    span = "-".join(str(v) for v in (filters.since, filters.until) if v is not None) or "all"
    name = f"qeaims-events-{filters.sector or 'all-sectors'}-{span}.{format}"
    body = _csv_lines(rows()) if format == "csv" else _json_lines(rows())
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    return StreamingResponse(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Event-Count": str(total)})


@router.get("/events/{block}/{log_index}", response_model=EventEvidenceOut,
            summary="One event with the verification of its signed batch and key epoch",
            responses={**_ERRORS, 404: {"model": ErrorBody}})
def one_event(
    who: Reader,
    ctx: Ctx,
    block: Annotated[int, Path(ge=0, le=10**12)],
    log_index: Annotated[int, Path(ge=0, le=10**9)],
) -> EventEvidenceOut:
    db = _reader(ctx)
    meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('chain_id', 'event_ledger', 'registry')"))
    found = None if len(meta) < 3 else event_evidence(
        db, block, log_index, chain_id=int(meta["chain_id"]), ledger=meta["event_ledger"], registry=meta["registry"],
        keys=_key_history(db, int(meta["chain_id"]), meta["registry"]))
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"no recorded event at block {block}, log index {log_index}")
    require_sector(who, found.event.about)
    batch = None if found.batch is None else BatchOut(**vars(found.batch))
    key = None if found.key is None else KeyOut(**vars(found.key))
    return EventEvidenceOut(event=_item(found.event), verified=found.verified, batch=batch, key=key)
