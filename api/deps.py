"""Dependencies the routers share: the context and a read-only connection to the index."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from api.context import ApiContext

__all__ = ["Ctx", "Db"]


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _db(ctx: Annotated[ApiContext, Depends(_ctx)]) -> Iterator[sqlite3.Connection]:
    with ctx.read() as db:
        yield db


Ctx = Annotated[ApiContext, Depends(_ctx)]
Db = Annotated[sqlite3.Connection, Depends(_db)]
