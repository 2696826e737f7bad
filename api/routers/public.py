"""`GET /public/status`, `/public/availability` and `/public/incidents`: the city's services in plain words,
for anyone.

No token, and nothing an attacker could use: the models below carry a sector's name, a district's
name, plain words and times, never a node or asset id, an address, a key, a payload or a
transaction hash (tests/api/test_public_api.py walks every schema and body for them).

Where it comes from:

- status: the twins' service messages, watched by `api.service_watch.ServiceWatch`, which `attach`
  starts only when the app follows the city (``follow=True``) and stops on shutdown. Without a
  message yet, a district reads "no data yet" (never an error); the twins report whole sectors, so
  a district shows its sector's level unless a message names the district (see the watch).
- availability: the same watch's history, per sector one point a minute over the last N minutes (5..1440),
  so a chart opens with the last hour drawn instead of starting empty (`ServiceWatch.series`).
- incidents: a district whose service is degraded or out, and each on-chain node the registry holds
  isolated or under repair (``NodeStatusChanged`` in the API's index), told by its district and its
  kind in plain words ("a pump station in North-West is out of service after a detected fault").
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, Field

from api.context import ApiContext
from api.deps import Ctx
from api.errors import ErrorBody
from api.service_watch import MINUTE_S, SERIES_MINUTES, ServiceWatch, percent
from chain.registry_history import NODE_STATUS, sector_key
from core.errors import QeaimsError
from core.logs import log_line
from core.messages import Sector
from core.sectors import DevNode
from links.plan import DASHBOARD_SAE
from sectors.plugin import plugin_of

__all__ = ["CITY_WIDE", "WATCH_SAE", "PublicAvailability", "PublicIncident", "PublicIncidents", "PublicSectorSeries",
           "PublicSectorStatus", "PublicStatus", "attach", "router", "sector_districts"]

router = APIRouter(tags=["public"])

WATCH_SAE = DASHBOARD_SAE
"""The links SAE the watch reads the twins' service messages through: the dashboard's own
(`links.plan.DASHBOARD_SAE`, carrying ``qeaims-svc/<sector>`` only). One process holds an SAE at a time
(`bus.secure._hold`), so sharing the operations desk's would lock `qeaims scenario run` out while the
API runs."""

CITY_WIDE = "City-wide"
"""The one district of a sector whose plug-in names none for its nodes."""

State = Literal["ok", "degraded", "outage", "no data yet", "no recent data"]


class PublicSectorStatus(BaseModel):
    sector: str
    district: str
    state: State = Field(description="ok, degraded (some service lost), outage (most of it lost), no data yet, "
                                     "or no recent data (the sector stopped reporting)")
    availability: float | None = Field(description="percent of the service delivered over the last hour "
                                                   "(time-weighted), null without data")
    updated: datetime | None = Field(description="when the newest service level arrived")


class PublicStatus(BaseModel):
    items: list[PublicSectorStatus]
    note: str = Field(description="how to read the figures, in one sentence")


class PublicSectorSeries(BaseModel):
    sector: str
    availability: list[float | None] = Field(description="percent of the service delivered in each minute "
                                                         "(time-weighted, mean over the sector's districts), "
                                                         "oldest first; null for a minute without data")


class PublicAvailability(BaseModel):
    start: datetime = Field(description="when the first minute begins; the points are one minute apart and the "
                                        "last is the minute under way")
    step_s: int = Field(description="seconds between points (60)")
    items: list[PublicSectorSeries]


class PublicIncident(BaseModel):
    sector: str
    district: str
    since: datetime | None
    text: str


class PublicIncidents(BaseModel):
    items: list[PublicIncident]
    note: str


_NOTE = ("Each sector reports its service as a whole, so every district of a sector shows that sector's "
         "figure; incidents name the district they are in.")


def sector_districts() -> dict[str, tuple[str, ...]]:
    """Each registered sector's districts: those its nodes are in (`DevNode.district`), in city order."""
    from core.sectors import DISTRICTS

    out: dict[str, tuple[str, ...]] = {}
    for sector in Sector:
        named = {n.district for n in plugin_of(sector).nodes if n.district}
        out[sector.value] = tuple(d for d in DISTRICTS if d in named) or (CITY_WIDE,)
    return out


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _watch(request: Request) -> ServiceWatch | None:
    watch: ServiceWatch | None = getattr(request.app.state, "service_watch", None)
    return watch


@router.get("/public/status", response_model=PublicStatus, summary="Service status per sector and district (no token)")
def public_status(request: Request) -> PublicStatus:
    watch = _watch(request)
    if watch is None:
        items = [PublicSectorStatus(sector=s, district=d, state="no data yet", availability=None, updated=None)
                 for s, names in sector_districts().items() for d in names]
    else:
        items = [PublicSectorStatus(sector=d.sector, district=d.district, state=cast(State, d.state),
                                    availability=None if d.availability_hour is None
                                    else percent(d.availability_hour),
                                    updated=_time(d.updated))
                 for d in watch.snapshot()]
    return PublicStatus(items=items, note=_NOTE)


MINUTES_MIN = 5
Minutes = Annotated[int, Query(ge=MINUTES_MIN, le=SERIES_MINUTES,
                               description=f"how many minutes back ({MINUTES_MIN}..{SERIES_MINUTES})")]


@router.get("/public/availability", response_model=PublicAvailability,
            summary="Availability per sector, one point a minute over the last N minutes (no token)",
            responses={422: {"model": ErrorBody}})
def public_availability(request: Request, minutes: Minutes = 60) -> PublicAvailability:
    watch = _watch(request)
    if watch is None:
        now = datetime.now(UTC).timestamp()
        start = (now // MINUTE_S - minutes + 1) * MINUTE_S
        series: dict[str, list[float | None]] = {s: [None] * minutes for s in sector_districts()}
    else:
        start, series = watch.series(minutes)
    items = [PublicSectorSeries(sector=sector, availability=[None if v is None else percent(v) for v in values])
             for sector, values in series.items()]
    return PublicAvailability(start=datetime.fromtimestamp(start, tz=UTC), step_s=int(MINUTE_S), items=items)


_KIND_WORDS = {"pump-station": "a pump station", "treatment-plant": "a treatment plant", "trunk-main": "a water main",
               "feeder": "a power feeder", "lift-station": "a sewage lift station", "outfall": "a sewer outfall",
               "hospital": "a hospital", "clinic": "a clinic", "dispatch": "the ambulance dispatch",
               "signal-group": "a group of traffic signals", "rail-line": "a metro line", "road-link": "a bridge or road",
               "data-centre": "a bank data centre", "payment-switch": "the payment network",
               "atm-cluster": "a group of cash machines"}
_STATUS_WORDS = {"isolated": "is out of service after a detected fault", "repairing": "is being repaired"}


def _kind_words(kind: str) -> str:
    return _KIND_WORDS.get(kind, "a facility")


def _node_args(args: dict[str, Any]) -> tuple[str, int]:
    raw = str(args["node"]).lower()
    return (raw if raw.startswith("0x") else "0x" + raw), int(args["to"])


def chain_incidents(db: sqlite3.Connection) -> list[PublicIncident]:
    """Nodes the registry holds isolated or under repair now, in plain words (no ids)."""
    nodes: dict[str, tuple[str, DevNode]] = {}
    for sector in Sector:
        for dev in plugin_of(sector).nodes:
            nodes[sector_key(dev.node)] = (sector.value, dev)
    now: dict[str, tuple[int, int | None]] = {}  # node key → (status, since)
    for timestamp, args in db.execute("SELECT timestamp, args FROM logs WHERE event = 'NodeStatusChanged' "
                                      "ORDER BY block, log_index"):
        try:
            key, status = _node_args(json.loads(args))
        except (ValueError, KeyError, TypeError):
            continue
        now[key] = (status, None if timestamp is None else int(timestamp))
    out = []
    for key, (status, since) in now.items():
        words = _STATUS_WORDS.get(NODE_STATUS.get(status, ""))
        if words is None or key not in nodes:
            continue
        name, dev = nodes[key]
        where = "" if not dev.district else f" in {dev.district}"
        text = f"{_kind_words(dev.kind).capitalize()}{where} {words}."
        out.append(PublicIncident(sector=name, district=dev.district or CITY_WIDE,
                                  since=_time(None if since is None else float(since)), text=text))
    return out


def _read_chain_incidents(ctx: ApiContext) -> list[PublicIncident]:
    """The chain's incidents when the API has an index; none (not an error) before it has one."""
    if not ctx.index_path.exists():
        return []
    try:
        with ctx.read() as db:
            return chain_incidents(db)
    except (sqlite3.Error, QeaimsError) as exc:  # the public page never fails on the chain's account
        log_line("qeaims.api", "public-incidents-without-chain", detail=type(exc).__name__)
        return []


@router.get("/public/incidents", response_model=PublicIncidents, summary="Ongoing incidents in plain words (no token)")
def public_incidents(request: Request, ctx: Ctx) -> PublicIncidents:
    items: list[PublicIncident] = []
    watch = _watch(request)
    if watch is not None:
        for d in watch.snapshot():
            if d.state in ("degraded", "outage"):
                share = "" if d.current is None else f": {round(100.0 * d.current)}% of the service is available"
                what = "is partly out" if d.state == "degraded" else "is out"
                items.append(PublicIncident(sector=d.sector, district=d.district, since=_time(d.since),
                                            text=f"{plugin_of(d.sector).title} service in {d.district} {what}{share}."))
    items += _read_chain_incidents(ctx)
    note = "No incident is known." if not items else "Incidents in force now."
    if watch is None and not items:
        note = "No incident is known; service levels: no data yet."
    return PublicIncidents(items=items, note=note)


def attach(app: FastAPI, ctx: ApiContext, *, follow: bool) -> None:
    """With `follow`, watch the twins' service messages while the app runs (started with it, stopped on
    shutdown); the bus is the city's (`<home>/run/status.json`'s port), through the operations SAE's links
    when the city runs secure links."""
    if not follow:
        return
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: Any) -> AsyncIterator[Any]:
        watch = open_watch(ctx)
        app.state.service_watch = watch
        if watch is not None:
            watch.start()
        try:
            async with previous(running) as state:
                yield state
        finally:
            if watch is not None:
                watch.stop()
            app.state.service_watch = None

    app.router.lifespan_context = lifespan


def open_watch(ctx: ApiContext) -> ServiceWatch | None:
    """The watch on the city's broker, or None (logged) when its links cannot be opened here."""
    from bus.secure import open_links

    port = 1883
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        port = int(json.loads((ctx.settings.home / "run" / "status.json").read_text()).get("mqtt_port", 1883))
    try:
        links = open_links(ctx.settings.home, WATCH_SAE)
    except (QeaimsError, OSError) as exc:  # another process holds the SAE, or its keys are missing
        log_line("qeaims.api", "service-watch-off", detail=str(exc))
        return None
    return ServiceWatch(sector_districts(), port=port, links=links)
