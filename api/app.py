"""The API's application: `create_app(settings)` for uvicorn (`qeaims serve`) and for tests.

Routers are found, not listed: every module in `api/routers/` that defines `router` is mounted under
`/api/v1`, in name order, so a resource is one file and adding one never edits this module. The
dashboard's pages and their vendored modules are mounted by `api/assets.py` when it exists.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI

from api import routers as routers_package
from api.auth import TokenStore
from api.context import ApiContext
from api.errors import install_error_handlers
from core.config import Settings

__all__ = ["API_PREFIX", "create_app", "router_modules"]

API_PREFIX = "/api/v1"
VERSION = "1.0.0"


def router_modules() -> list[Any]:
    """Every `api.routers.*` module that defines `router`, by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(routers_package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{routers_package.__name__}.{info.name}")
        if isinstance(getattr(module, "router", None), APIRouter):
            found.append(module)
    return found


def create_app(settings: Settings, *, follow: bool = True) -> FastAPI:
    """The app over `settings.home`. `follow=False` leaves the chain follower off (tests that prepare
    the index themselves); a module's optional `attach(app, ctx, follow=...)` starts what it runs."""
    app = FastAPI(
        title="QEAIMS audit and operations API",
        version=VERSION,
        description=("The city's on-chain history, its verification, the state of nodes, oracles, quorums and "
                     "the council, and the public's service status. Every 4xx/5xx body is {\"error\": \"...\"}."),
    )
    ctx = ApiContext(settings)
    app.state.ctx = ctx
    app.state.tokens = TokenStore(ctx.api_dir)
    install_error_handlers(app)
    for module in router_modules():
        app.include_router(module.router, prefix=API_PREFIX)
        attach: Callable[..., None] | None = getattr(module, "attach", None)
        if attach is not None:
            attach(app, ctx, follow=follow)
    try:
        assets = importlib.import_module("api.assets")
    except ModuleNotFoundError:
        assets = None
    if assets is not None:
        assets.mount(app)
    return app
