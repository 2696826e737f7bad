"""`POST/GET/DELETE /webhooks`: an operator's endpoints for its sector's alerts and the crisis
notices for it (api/webhooks.py says which).

Only an operator registers or deletes, and only for its own sector: a hook is a way for a sector's
alerts to leave the server, so it is that sector's operator's decision. Auditors and governors may list
every hook (never a secret). The secret is in the answer to the registration and nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field, field_validator

from api.auth import Principal, authenticated, require, require_sector
from api.context import ApiContext
from api.errors import ErrorBody
from api.live.hub import hub_of
from api.webhooks import (
    MAX_PER_SECTOR,
    SIGNATURE_HEADER,
    DeliveryCollector,
    Dispatcher,
    Hook,
    HookStore,
    check_url,
)
from core.errors import UnknownSector
from core.sectors import Sector

__all__ = ["attach", "router"]

router = APIRouter(tags=["webhooks"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})


class WebhookIn(BaseModel):
    url: str = Field(max_length=2048, description="http(s) URL that receives a signed JSON POST per alert, and per crisis notice for or about the sector")
    sector: str | None = Field(default=None, max_length=32, description="the operator's own sector (the default)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)


class WebhookOut(BaseModel):
    id: str
    sector: str
    url: str
    label: str
    created: str


class WebhookCreated(WebhookOut):
    secret: str = Field(description=f"HMAC-SHA256 key for the {SIGNATURE_HEADER} header; shown only once")


class WebhookList(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None


def _store(request: Request) -> HookStore:
    store: HookStore = request.app.state.webhooks
    return store


def _out(hook: Hook) -> WebhookOut:
    return WebhookOut(id=hook.id, sector=hook.sector, url=hook.url, label=hook.label, created=hook.created)


@router.post("/webhooks", status_code=201, response_model=WebhookCreated,
             summary=f"Register a URL for this operator's sector's alerts and notices (at most {MAX_PER_SECTOR} per sector)",
             responses={409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def register(body: WebhookIn, request: Request,
             who: Annotated[Principal, Depends(require("operator"))]) -> WebhookCreated:
    sector = who.sector if body.sector is None else _sector(body.sector)
    assert sector is not None  # an operator's token names its sector
    require_sector(who, sector)
    store = _store(request)
    if sum(1 for h in store.hooks() if h.sector == sector) >= MAX_PER_SECTOR:
        raise HTTPException(409, detail=f"{sector} already has {MAX_PER_SECTOR} webhooks; delete one first")
    hook = store.add(sector, body.url, who.label)
    return WebhookCreated(**_out(hook).model_dump(), secret=hook.secret)


@router.get("/webhooks", response_model=WebhookList, summary="Registered webhooks (an operator's sector only)",
            responses={422: {"model": ErrorBody}})
def list_hooks(request: Request, who: Annotated[Principal, Depends(authenticated)],
               limit: Annotated[int, Query(ge=1, le=500)] = 100,
               cursor: Annotated[str | None, Query(pattern=r"^wh_[0-9a-f]{16}$")] = None) -> WebhookList:
    hooks = sorted((h for h in _store(request).hooks() if who.may_read_sector(h.sector)),
                   key=lambda h: (h.created, h.id))
    if cursor is not None:
        ids = [h.id for h in hooks]
        if cursor not in ids:
            raise HTTPException(422, detail="cursor: no such webhook (it may have been deleted); start again")
        hooks = hooks[ids.index(cursor) + 1:]
    page = hooks[:limit]
    return WebhookList(items=[_out(h) for h in page], next_cursor=page[-1].id if len(hooks) > limit else None)


@router.delete("/webhooks/{hook_id}", status_code=204, summary="Delete one of this operator's webhooks",
               responses={404: {"model": ErrorBody}})
def delete_hook(hook_id: str, request: Request,
                who: Annotated[Principal, Depends(require("operator"))]) -> Response:
    store = _store(request)
    hook = next((h for h in store.hooks() if h.id == hook_id), None)
    if hook is None:
        raise HTTPException(404, detail=f"no webhook {hook_id[:40]}")
    require_sector(who, hook.sector)
    store.remove(hook_id)
    return Response(status_code=204)


def _sector(name: str) -> str:
    try:
        return Sector(name).value
    except UnknownSector as exc:
        raise HTTPException(422, detail=f"sector: {exc}") from None


def attach(app: FastAPI, ctx: ApiContext, *, follow: bool) -> None:
    """The hooks file and the delivery thread, fed by the hub's alerts; stopped with the app."""
    store = HookStore(ctx.api_dir)
    dispatcher = Dispatcher(store)
    app.state.webhooks = store
    app.state.webhook_dispatcher = dispatcher
    registry: CollectorRegistry | None = getattr(app.state, "metrics", None)
    if registry is not None:  # api/routers/metrics.py attached first (modules attach in name order)
        registry.register(DeliveryCollector(dispatcher))
    hub_of(app).add_sink(dispatcher.offer)
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner: Any) -> AsyncIterator[Any]:
        async with previous(inner) as state:
            try:
                yield state
            finally:
                dispatcher.stop()

    app.router.lifespan_context = lifespan
