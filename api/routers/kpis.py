"""`GET /kpis`, `GET /kpis/reports`, `GET /kpis/reports/{name}`: the figures scenario runs measured.

`qeaims scenario run` writes every report it prints to `<home>/scenarios/reports/<scenario>-<UTC
stamp>.json` (`core.kpi_reports`). The API reads those files only: it never recomputes a figure, and
each figure is shown beside the targets the report itself carries (`"targets"`: the system brief's
current and future states and the project's acceptance bar) in the report's own unit (field seconds,
the city's clock; `wall` is the processing at the run's speed). A report without targets (the offline
year, the intrusion and eavesdropper plays) is listed with its figures left to the report itself.
KPIs are city-wide figures: any token reads `/kpis` (figures, targets, fault counts) and the list of
report files (names only). A whole report (`/kpis/reports/{name}`) is the run's raw record, naming
every sector's faulted nodes, oracle addresses and detections: auditors and governors only. An
operator's copy is refused rather than filtered, because a report's layout is the scenario runner's
and a filter that misses a field it adds later would leak another sector's detail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel

from api.auth import Principal, require
from api.deps import Ctx
from api.errors import ErrorBody
from core.kpi_reports import NAME_PATTERN, ReportFile, list_reports, read_report

router = APIRouter(tags=["kpis"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

Reader = Annotated[Principal, Depends(require("auditor", "operator", "governor"))]
WholeReader = Annotated[Principal, Depends(require("auditor", "governor"))]  # every sector's raw detail
_SCENARIO = r"^[a-z0-9][a-z0-9-]{0,63}$"


class KpiFigure(BaseModel):
    """One measured figure and what it is read against."""

    figure: str
    value: float | None
    unit: str
    wall_s: float | None = None  # the same step in wall seconds (processing at the run's speed)
    target: float | None = None  # the project's acceptance bar (p95), where there is one
    brief: Any = None  # the system brief's figure for it (a [from, to] range, a number, or current/future)
    automation_off: float | None = None  # the baseline run with automation off, where the report has one


class KpiReportInfo(BaseModel):
    name: str
    scenario: str
    written: datetime
    size: int


class KpiSummary(KpiReportInfo):
    speed: float | None
    clock: str | None  # the report's own words for its unit
    figures: list[KpiFigure]
    targets: dict[str, Any] | None  # as the report carries them (None for a report without targets)
    faults: dict[str, Any] | None
    audit_ok: bool | None  # the report's audit of every event on the chain found nothing invalid


class KpiList(BaseModel):
    items: list[KpiSummary]  # the latest report of each scenario, by scenario


class KpiReportList(BaseModel):
    items: list[KpiReportInfo]
    next_cursor: str | None


class KpiReport(KpiReportInfo):
    report: dict[str, Any]


def _info(found: ReportFile) -> KpiReportInfo:
    return KpiReportInfo(name=found.name, scenario=found.scenario, written=found.written, size=found.size)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def figures(report: dict[str, Any]) -> list[KpiFigure]:
    """Each p95 step time (field seconds) beside its targets, then each sector's availability beside the
    brief's uptime and the automation-off baseline. Empty for a report that carries no targets."""
    targets, kpis = report.get("targets"), report.get("kpis")
    if not isinstance(targets, dict) or not isinstance(kpis, dict):
        return []
    unit = str(targets.get("unit", "field seconds"))
    acceptance = targets.get("acceptance") or {}
    brief = targets.get("brief") or {}
    wall = kpis.get("wall") or {}
    out = []
    for key, value in (kpis.get("field") or {}).items():
        stem = key.removesuffix("_p95_s")
        out.append(KpiFigure(figure=key, value=_number(value), unit=unit, wall_s=_number(wall.get(key)),
                          target=_number(acceptance.get(key)),
                          brief=brief.get(f"{stem}_time_s", brief.get(f"{stem}_s"))))
    baseline = (kpis.get("baseline") or {}).get("availability") or {}
    for sector, value in sorted((kpis.get("availability") or {}).items()):
        out.append(KpiFigure(figure=f"availability_{sector}", value=_number(value), unit="share of the window served",
                          brief=brief.get("uptime"), automation_off=_number(baseline.get(sector))))
    return out


def _summary(found: ReportFile, report: dict[str, Any]) -> KpiSummary:
    audit = report.get("audit")
    targets = report.get("targets")
    kpis = report.get("kpis") if isinstance(report.get("kpis"), dict) else {}
    faults = report.get("faults")
    return KpiSummary(**_info(found).model_dump(), speed=_number(report.get("speed")),
                      clock=str(kpis["clock"]) if isinstance(kpis, dict) and "clock" in kpis else None,
                      figures=figures(report), targets=targets if isinstance(targets, dict) else None,
                      faults=faults if isinstance(faults, dict) else None,
                      audit_ok=(audit.get("invalid") == []) if isinstance(audit, dict) and "invalid" in audit else None)


@router.get("/kpis", response_model=KpiList, summary="The latest report of each scenario, figures beside targets")
def latest_kpis(_who: Reader, ctx: Ctx) -> KpiList:
    latest: dict[str, ReportFile] = {}
    for found in list_reports(ctx.settings.home):  # oldest first: the last one of a scenario stands
        latest[found.scenario] = found
    items = []
    for scenario in sorted(latest):
        read = read_report(ctx.settings.home, latest[scenario].name)
        if read is not None:
            items.append(_summary(*read))
    return KpiList(items=items)


@router.get("/kpis/reports", response_model=KpiReportList, summary="Every report file, oldest first",
            responses={422: {"model": ErrorBody}})
def reports(_who: Reader, ctx: Ctx,
            scenario: Annotated[str | None, Query(pattern=_SCENARIO, description="only this scenario's")] = None,
            limit: Annotated[int, Query(ge=1, le=500, description="items per page (1..500)")] = 100,
            cursor: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=100,
                                                description="next_cursor of the previous page (opaque)")] = None,
            ) -> KpiReportList:
    found = list_reports(ctx.settings.home, scenario=scenario)
    if cursor is not None:  # the order is (stamp, name); the stamp is the name's last 16 characters
        found = [f for f in found if (f.name[-16:], f.name) > (cursor[-16:], cursor)]
    chosen = found[:limit]
    return KpiReportList(items=[_info(f) for f in chosen],
                      next_cursor=chosen[-1].name if len(found) > limit and chosen else None)


@router.get("/kpis/reports/{name}", response_model=KpiReport,
            summary="One report as the run wrote it (auditors and governors: it names every sector's detail)",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def report(_who: WholeReader, ctx: Ctx,
           name: Annotated[str, Path(pattern=NAME_PATTERN, max_length=100,
                                     description="<scenario>-<yyyymmddThhmmssZ>, as /kpis/reports lists it")]
           ) -> KpiReport:
    read = read_report(ctx.settings.home, name)
    if read is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"there is no report {name}")
    found, content = read
    return KpiReport(**_info(found).model_dump(), report=content)
