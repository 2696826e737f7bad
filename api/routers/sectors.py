"""`GET /sectors` and `GET /sectors/{sector}/network`: the city's sectors and each one's drawing.

The drawing is the sector plug-in's (`SectorPlugin.network`, `sectors.drawing`): model elements at
their coordinates (0..1000, north at the top), links between them, the on-chain node each one
anchors to, and each on-chain node as a marker; every element has its district. It reads the
model's geometry only and is cached per process, so the first request for a sector pays for loading
its model (the feeder's pandapower case: about a second) and later ones nothing. An operator reads
its own sector only; the sector list shows an operator its own sector.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path
from pydantic import BaseModel, Field

from api.auth import Principal, authenticated, require_sector
from api.context import ApiContext
from api.errors import ErrorBody
from core.logs import log_line
from core.sectors import DISTRICTS
from sectors.plugin import SectorPlugin, plugin_of

__all__ = ["DrawnEdgeOut", "DrawnNodeOut", "NetworkOut", "SectorList", "SectorSummary", "router"]

router = APIRouter(tags=["sectors"], responses={401: {"model": ErrorBody}})


class SectorSummary(BaseModel):
    sector: str
    title: str
    operator: str
    nodes: int = Field(description="on-chain nodes the sector registers")
    districts: list[str] = Field(description="districts its nodes are in")
    drawn: bool = Field(description="whether GET /sectors/{sector}/network has a drawing")


class SectorList(BaseModel):
    items: list[SectorSummary]


class DrawnNodeOut(BaseModel):
    id: str = Field(description="the model element (bus-12, junction:147) or, for a marker, the on-chain node")
    kind: str
    x: float
    y: float
    anchor: str | None = Field(description="the on-chain node this element belongs to; null: not isolable")
    district: str
    marker: bool = Field(description="true for an on-chain node's own marker")


class DrawnEdgeOut(BaseModel):
    id: str
    kind: str
    source: str
    target: str
    anchor: str | None


class NetworkOut(BaseModel):
    sector: str
    districts: list[str]
    nodes: list[DrawnNodeOut]
    edges: list[DrawnEdgeOut]


def _summary(plugin: SectorPlugin) -> SectorSummary:
    named = {n.district for n in plugin.nodes}
    return SectorSummary(sector=plugin.name, title=plugin.title, operator=plugin.operator, nodes=len(plugin.nodes),
                         districts=[d for d in DISTRICTS if d in named], drawn=plugin.network is not None)


@router.get("/sectors", response_model=SectorList, summary="The sectors, their node counts and districts")
def list_sectors(who: Annotated[Principal, Depends(authenticated)]) -> SectorList:
    from core.messages import Sector

    return SectorList(items=[_summary(plugin_of(s)) for s in Sector if who.may_read_sector(s.value)])


@router.get("/sectors/{sector}/network", response_model=NetworkOut, summary="A sector's network drawing",
            responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}})
def sector_network(sector: Annotated[str, Path(max_length=31)],
                   who: Annotated[Principal, Depends(authenticated)]) -> NetworkOut:
    plugin = plugin_of(sector)  # UnknownSector: 404 naming the choices
    require_sector(who, plugin.name)
    if plugin.network is None:
        raise HTTPException(404, detail=f"sector {plugin.name} has no network drawing")
    drawing = plugin.network()
    return NetworkOut(
        sector=drawing.sector, districts=list(drawing.districts),
        nodes=[DrawnNodeOut(id=n.id, kind=n.kind, x=n.x, y=n.y, anchor=n.anchor, district=n.district, marker=n.marker)
               for n in drawing.nodes],
        edges=[DrawnEdgeOut(id=e.id, kind=e.kind, source=e.source, target=e.target, anchor=e.anchor)
               for e in drawing.edges])


def _warm_drawings() -> None:
    """Draws every sector once, so the first page that opens the networks does not wait for a model's
    libraries to load (pandapower, wntr: seconds on two busy cores). Drawings are cached per process."""
    from core.messages import Sector

    for sector in Sector:
        plugin = plugin_of(sector)
        if plugin.network is not None:
            try:
                plugin.network()
            except Exception as exc:  # noqa: BLE001 (a sector that cannot draw answers its own request with the error)
                log_line("qeaims.api", "drawing-warmup-failed", sector=plugin.name, error=type(exc).__name__)


def attach(app: FastAPI, ctx: ApiContext, *, follow: bool) -> None:
    """While following a city, the drawings are made in the background at start (`_warm_drawings`)."""
    if follow:
        threading.Thread(target=_warm_drawings, name="drawing-warmup", daemon=True).start()
