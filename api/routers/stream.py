"""`GET /stream`: the chain's news as Server-Sent Events, for the dashboard and for scripts.

Each message's SSE `id` is the cursor of the log it comes from, so a client that reconnects with
`Last-Event-ID` (browsers do it by themselves) is first sent what it missed, read from the index by the
same code the live follower uses (`api/live/messages.py`), then the live messages, without a gap or a
duplicate. An operator receives its own sector's messages only and no council proposals; an auditor or
a governor receives everything, or one sector when it asks (`sector=`).

No token, no stream (401): every message names nodes, oracles or payloads, which the public pages
must not show, and the public's status (`GET /public/status`) comes from the twins' service messages,
not from the chain, so there is nothing here to give it; an open stream would also let anyone hold a
connection and a 1000-message queue.

`attach` makes the app's hub and, when the app follows the chain, starts the follower with the app
(lifespan) and stops it with the app.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.auth import Principal, authenticated, require_sector
from api.context import ApiContext
from api.errors import ErrorBody
from api.live.follower import ChainFollower
from api.live.hub import Audience, hub_of
from api.live.messages import TOPICS, Message, index_end, messages_after, parse_cursor
from core.errors import UnknownSector
from core.sectors import Sector

__all__ = ["REPLAY_LIMIT", "attach", "router"]

router = APIRouter(tags=["stream"])

REPLAY_LIMIT = 5_000  # messages sent from the index on a resume; beyond, one `lagged` and the live stream
RETRY_MS = 2_000
PING_S = 10.0  # a comment line when idle: proxies keep the connection, and a gone client is noticed
_AFTER_ANY = 2**62  # a log index after every log of a block
_DEFAULT_TOPICS = ",".join(TOPICS)


def _audience(
    who: Annotated[Principal, Depends(authenticated)],
    topics: Annotated[str, Query(max_length=200, description=f"comma-separated, of: {', '.join(TOPICS)}")]
    = _DEFAULT_TOPICS,
    sector: Annotated[str | None, Query(max_length=32, description="only this sector (an operator's own by default)")]
    = None,
) -> Audience:
    wanted = {t.strip() for t in topics.split(",") if t.strip()}
    unknown = sorted(wanted - set(TOPICS))
    if unknown or not wanted:
        raise HTTPException(422, detail=f"topics: unknown topic {unknown[0] if unknown else '(none)'}; "
                                        f"choose from {', '.join(TOPICS)}")
    if sector is not None:
        try:
            sector = Sector(sector).value
        except UnknownSector as exc:
            raise HTTPException(422, detail=f"sector: {exc}") from None
        require_sector(who, sector)
    if who.role == "operator":
        sector = who.sector
    return Audience(frozenset(wanted), sector, who.role == "operator")


def _resume(last_event_id: Annotated[str | None, Header(max_length=40)] = None) -> tuple[int, int] | None:
    if last_event_id is None or not last_event_id.strip():
        return None
    try:
        return parse_cursor(last_event_id.strip())
    except ValueError as exc:
        raise HTTPException(422, detail=f"Last-Event-ID: {exc}") from None


def _sse(message: Message) -> ServerSentEvent:
    return ServerSentEvent(event=message.topic, id=message.cursor, raw_data=json.dumps(message.data,
                                                                                      separators=(",", ":")))


def _replay(ctx: ApiContext, after: tuple[int, int],
            audience: Audience) -> tuple[list[Message], bool, tuple[int, int]]:
    """What a resuming client missed, from the index: (messages, whether the limit cut it short, the
    index's end when read)."""
    out: list[Message] = []
    with ctx.read() as db:
        until = index_end(db)
        cursor = after
        while cursor < until:
            page, cursor_next = messages_after(db, cursor, limit=1_000, until=until)
            if cursor_next == cursor:
                break
            cursor = cursor_next
            out.extend(m for m in page if audience.wants(m))
            if len(out) >= REPLAY_LIMIT:
                return out[:REPLAY_LIMIT], True, until
    return out, False, until


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    summary="Live chain messages as Server-Sent Events (id = cursor; Last-Event-ID resumes)",
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def stream(
    request: Request,
    audience: Annotated[Audience, Depends(_audience)],
    after: Annotated[tuple[int, int] | None, Depends(_resume)],
) -> AsyncIterable[ServerSentEvent]:
    hub = hub_of(request.app)
    ctx: ApiContext = request.app.state.ctx
    sub = hub.subscribe(audience)  # before the replay: whatever is published meanwhile is queued
    try:
        yield ServerSentEvent(comment="qeaims stream", retry=RETRY_MS)
        last = after
        if after is not None:
            missed, cut, end = await run_in_threadpool(_replay, ctx, after, audience)
            if end < after:  # the client saw blocks the chain has since lost
                yield _sse(Message("rewound", {"to_block": end[0], "hint": "the chain lost later blocks; "
                                                                             "their messages may come again"}))
                last = end
            for message in missed:
                yield _sse(message)
            if missed:
                last = missed[-1].key
            if cut:
                yield _sse(Message("lagged", {"dropped": None, "last_sent": missed[-1].cursor,
                                              "hint": "too much to resume; read GET /events from last_sent"}))
        while True:
            try:
                message = await asyncio.wait_for(sub.get(), PING_S)
            except TimeoutError:
                yield ServerSentEvent(comment="ping")
                continue
            if message.topic == "rewound" and last is not None:
                last = min(last, (int(message.data["to_block"]), _AFTER_ANY))  # blocks mined again: send again
            elif last is not None and message.cursor is not None and message.key <= last:
                continue  # already sent by the replay
            yield _sse(message)
    finally:
        hub.unsubscribe(sub)


def attach(app: FastAPI, ctx: ApiContext, *, follow: bool) -> None:
    """The app's hub; with `follow`, the chain follower runs for the app's lifetime."""
    hub = hub_of(app)
    if not follow:
        return
    follower = ChainFollower(ctx, hub)
    app.state.follower = follower
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner: Any) -> AsyncIterator[Any]:
        async with previous(inner) as state:
            follower.start()
            try:
                yield state
            finally:
                follower.stop()

    app.router.lifespan_context = lifespan
