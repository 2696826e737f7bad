"""`GET /links`: the city's secure links as `qeaims link status` shows them (`links.status.link_rows`).

Each link: its ends and fibre, its QKD state and last QBER and keys in store (from the KME), its
session's epoch and mode (hybrid or the ML-KEM-768 + X25519 fallback) and the envelopes its ends
sealed, opened and refused by reason. No key material is read or shown. A city started with
`--no-links` has none: 404 with that said. Each sector's links start at its twin, so an operator
reads the links of its own sector's twin.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel

from api.auth import Principal, require
from api.deps import Ctx
from api.errors import ErrorBody
from api.routers._ops import sector_filter
from links.plan import twin_sae
from links.status import PlaintextLinks, link_rows

router = APIRouter(tags=["links"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

Reader = Annotated[Principal, Depends(require("auditor", "operator", "governor"))]


class SecureLink(BaseModel):
    link: str
    master: str
    slave: str
    distance_km: float
    qkd_state: str  # the KME's word (secure, alarm, ...), "unknown" when the KME was not reached
    qber: float | None
    keys_available: int | None
    epoch: int | None  # the master's current session epoch
    mode: str | None  # the session's key mode
    sealed: int  # envelopes sent by both ends
    opened: int  # envelopes taken by the ends' reading clients
    refused: dict[str, int]  # by reason


class SecureLinks(BaseModel):
    kme: str
    kme_error: str  # "" when the KME answered
    links: list[SecureLink]


@router.get("/links", response_model=SecureLinks, summary="The secure links: QKD state, QBER, session, envelopes",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def list_links(who: Reader, ctx: Ctx,
               sector: Annotated[str | None, Query(max_length=32, description="only this sector's twin's links")]
               = None) -> SecureLinks:
    chosen = sector_filter(who, sector)
    try:
        data = link_rows(ctx.settings.home)
    except PlaintextLinks:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this city runs plaintext links: there are no secure "
                                                              "links to show (`qeaims up` without --no-links)") from None
    rows = [SecureLink.model_validate(row) for row in data["links"]]
    if chosen is not None:
        rows = [r for r in rows if twin_sae(chosen) in (r.master, r.slave)]
    return SecureLinks(kme=str(data["kme"]), kme_error=str(data["kme_error"]), links=rows)
