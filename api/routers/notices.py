"""`POST /notices`, `GET /notices`: crisis notices, each checked against its digest on the chain.

Who posts: an operator, for its own sector, or a governor; the notice is recorded on-chain by the
control room's identity (api/notices.py) before it is stored. Who reads: anyone reads the `public`
audience without a token; the providers' audiences (`healthcare`, `banking`) need one. An operator sees
public notices, those addressed to its own sector as an audience, and every notice of its own sector;
auditors and governors see all. Every item says whether it is verified, and gives the canonical bytes
(as UTF-8 text) and the on-chain SHA-256 so a page can recompute the digest itself. `GET /notices/missing`
lists the other direction: notices the control room recorded that the store no longer holds (a deleted
row cannot hide behind the absence of a row to check).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field, field_validator

from api.auth import Principal, principal, require
from api.deps import Ctx
from api.errors import ErrorBody
from api.notices import Notice, NoticeStore, Verdict, new_notice, verdict
from chain.control_room import record_as_control_room
from chain.notices import AUDIENCES, NoticeRecord, notice_payload, notice_records
from core.errors import ChainError, QeaimsError
from core.sectors import Sector

__all__ = ["router"]

router = APIRouter(tags=["notices"])

Audience = Literal["public", "healthcare", "banking"]
_RECORDING = threading.Lock()  # one control-room event at a time from this process (one outbox, one nonce)
_CURSOR = re.compile(r"^[1-9][0-9]{0,17}\Z")


def _sector(value: str) -> str:
    try:
        return Sector(value).value
    except QeaimsError as exc:
        raise ValueError(str(exc)) from None


class NoticeIn(BaseModel):
    audience: Audience = Field(description="who it is for: the public, or the healthcare or banking providers")
    sector: str = Field(description="the sector whose situation it is about (an operator posts for its own)")
    district: str = Field(min_length=1, max_length=64, description="the district it concerns")
    text: str = Field(min_length=1, max_length=2000)

    @field_validator("sector")
    @classmethod
    def _known(cls, value: str) -> str:
        return _sector(value)


class NoticeEvent(BaseModel):
    """Where the notice's digest is on the chain (for token holders only)."""

    oracle: str
    seq: int
    batch_id: int
    block: int
    log_index: int
    tx_hash: str


class NoticeOut(BaseModel):
    id: str
    audience: str = Field(description="public, healthcare or banking (a row altered in the store shows what it holds)")
    sector: str
    district: str
    text: str
    created: str
    author: str
    canonical: str = Field(description="the UTF-8 text whose SHA-256 is recorded on-chain")
    sha256: str = Field(description="SHA-256 of `canonical`, recomputed by the server from the stored notice")
    onchain_sha256: str | None = Field(description="the SHA-256 the notice event records, if there is one")
    verified: bool
    reason: str | None = Field(description="why it is not verified (null when it is); without a token, in words "
                                           "that name no address")
    event: NoticeEvent | None = Field(default=None, description="the notice event (token holders only)")


class NoticePage(BaseModel):
    items: list[NoticeOut]
    next_cursor: str | None


def _out(notice: Notice, records: list[NoticeRecord] | None, *, with_event: bool) -> NoticeOut:
    judged = Verdict(False, "the chain's index cannot be read right now; try again", None) if records is None \
        else verdict(notice, records)
    verified, event = judged.verified, judged.event
    reason = judged.reason if with_event else judged.reason_for_public  # no address for a reader without a token
    return NoticeOut(
        id=notice.id, audience=notice.audience,
        sector=notice.sector, district=notice.district, text=notice.text, created=notice.created,
        author=notice.author, canonical=notice.canonical().decode(), sha256=notice.sha256,
        onchain_sha256=None if event is None else event.sha256, verified=verified, reason=reason,
        event=None if event is None or not with_event else NoticeEvent(
            oracle=event.oracle, seq=event.seq, batch_id=event.batch_id, block=event.block,
            log_index=event.log_index, tx_hash=event.tx_hash))


def _records(ctx: Ctx) -> list[NoticeRecord] | None:
    """Every notice event in the API's index, judged (None when there is no index and no chain to build it)."""
    try:
        with ctx.read() as db:
            return notice_records(db)
    except (ChainError, sqlite3.Error):
        return None


@router.post("/notices", response_model=NoticeOut, status_code=status.HTTP_201_CREATED,
             summary="Post a crisis notice (recorded on-chain by the control room, then stored)",
             responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody},
                        503: {"model": ErrorBody}})
def post_notice(body: NoticeIn, ctx: Ctx,
                who: Annotated[Principal, Depends(require("operator", "governor"))]) -> NoticeOut:
    if who.role == "operator" and who.sector != body.sector:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"an operator of {who.sector} may not post {body.sector}'s notices")
    notice = new_notice(audience=body.audience, sector=body.sector, district=body.district, text=body.text,
                        author=who.label)
    payload = notice_payload(id=notice.id, canonical=notice.canonical(), audience=notice.audience,
                             sector=notice.sector)
    with _RECORDING:
        record_as_control_room(ctx.settings, "notice", notice.sector, payload)
    stored = NoticeStore(ctx.api_dir).add(notice)
    ctx.sync()
    return _out(stored, _records(ctx), with_event=True)


@router.get("/notices", response_model=NoticePage, summary="Crisis notices, newest first, each verified against the chain",
            responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def list_notices(
    ctx: Ctx,
    who: Annotated[Principal | None, Depends(principal)],
    audience: Annotated[Audience | None, Query(description="only this audience (without a token: public)")] = None,
    sector: Annotated[str | None, Query(description="only notices about this sector")] = None,
    district: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> NoticePage:
    if cursor is not None and not _CURSOR.match(cursor):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="cursor: not a cursor this list gave")
    if sector is not None:
        try:
            sector = _sector(sector)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"sector: {exc}") from None
    if who is None:
        if audience not in (None, "public"):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"},
                                detail=f"notices for {audience} need a token: send 'Authorization: Bearer <token>'")
        visible: tuple[str, ...] | None = ("public",)
    elif who.role == "operator":
        visible = tuple(a for a in AUDIENCES if a in ("public", who.sector))
    else:
        visible = None
    page = NoticeStore(ctx.api_dir).page(
        visible=visible, own_sector=who.sector if who is not None and who.role == "operator" else None,
        audience=audience, sector=sector, district=district, before=int(cursor) if cursor else None, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    records = _records(ctx) if page else []
    items = [_out(n, records, with_event=who is not None) for n in page]
    return NoticePage(items=items, next_cursor=str(page[-1].n) if more else None)


class MissingNotice(BaseModel):
    """A notice the control room recorded on-chain that the store no longer holds (deleted?)."""

    id: str
    audience: str
    sector: str
    onchain_sha256: str
    event: NoticeEvent


class MissingPage(BaseModel):
    items: list[MissingNotice]
    next_cursor: str | None


_EVENT_CURSOR = re.compile(r"^([0-9]{1,18}):([0-9]{1,9})\Z")


@router.get("/notices/missing", response_model=MissingPage,
            summary="Notices recorded on-chain by the control room that the store does not hold, in chain order",
            responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody},
                       503: {"model": ErrorBody}})
def missing_notices(
    ctx: Ctx,
    who: Annotated[Principal, Depends(require("auditor", "governor", "operator"))],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page (block:log_index)")] = None,
) -> MissingPage:
    after = (-1, -1)
    if cursor is not None:
        matched = _EVENT_CURSOR.match(cursor)
        if matched is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="cursor: not a cursor this list gave")
        after = (int(matched.group(1)), int(matched.group(2)))
    with ctx.read() as db:
        counting = [r for r in notice_records(db) if r.counts and (r.block, r.log_index) > after
                    and (who.role != "operator" or r.sector == who.sector)]
    held = NoticeStore(ctx.api_dir).known([r.id for r in counting])
    gone = [r for r in counting if r.id not in held]
    page = gone[:limit]
    return MissingPage(
        items=[MissingNotice(id=r.id, audience=r.audience, sector=r.sector, onchain_sha256=r.sha256,
                             event=NoticeEvent(oracle=r.oracle, seq=r.seq, batch_id=r.batch_id, block=r.block,
                                               log_index=r.log_index, tx_hash=r.tx_hash)) for r in page],
        next_cursor=f"{page[-1].block}:{page[-1].log_index}" if len(gone) > limit else None)
