"""`GET /metrics` (at the root, outside `/api/v1` and the OpenAPI schema): Prometheus text format.

Needs an auditor's or a governor's token (Prometheus: `authorization: {credentials: <token>}` in the
scrape config): the counts of intrusions and isolations per sector say what the city has detected,
which is not for the public; an operator sees one sector only, and these families span all of them.
The families are documented in `api/metrics.py`.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from api.auth import Principal, require
from api.context import ApiContext
from api.live.follower import ChainFollower
from api.live.hub import hub_of
from api.metrics import LatencyMiddleware, make_registry

__all__ = ["attach", "router"]

router = APIRouter()  # nothing under /api/v1: attach() mounts /metrics at the root


def _scrape(request: Request, _: Annotated[Principal, Depends(require("auditor", "governor"))]) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def attach(app: FastAPI, ctx: ApiContext, *, follow: bool) -> None:
    def sync_age() -> float | None:
        follower: ChainFollower | None = getattr(app.state, "follower", None)
        if follower is None or follower.synced_at is None:
            return None
        return time.monotonic() - follower.synced_at

    registry, histogram = make_registry(ctx, hub_of(app), sync_age if follow else None)
    app.state.metrics = registry
    app.add_middleware(LatencyMiddleware, histogram=histogram)
    app.add_api_route("/metrics", _scrape, methods=["GET"], include_in_schema=False)
