"""One service figure per sector: the share of the sector's service the city gets right now.

The twins each report service in their own terms (kW served, customers without water, m³ spilled,
travel-time ratios, patients waiting, transactions served). A scenario's KPI "availability per
sector" needs one number in [0, 1] with the same meaning everywhere: *the share of the service
this sector owes the city that it is delivering at this instant*. `service_level` computes it
from the twin's physical truth (its ``service()`` report and true readings, never the possibly
falsified sensors), with the definition of each sector written on its function below.

``customers_affected`` counts the people (or, where the twin has no people, the units the
definition is built on) who are not getting the service now; ``critical_affected`` counts those
whose loss is life-critical. Only healthcare models life-critical loads (ICU patients); the other
twins mark none, so they report 0 rather than guess, and the cross-sector effect of their faults
shows up in the dependants' own levels (a hospital losing power is healthcare's critical loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.messages import Sector
from sectors.plugin import plugin_of

__all__ = ["ServiceLevel", "service_level", "service_message", "share", "volume_of"]


@dataclass(frozen=True)
class ServiceLevel:
    """How much of a sector's service is delivered now; ``detail`` holds the figures behind it."""

    availability: float
    customers_affected: int
    critical_affected: int
    detail: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.availability <= 1.0:
            raise ValueError(f"availability must be in [0, 1], got {self.availability}")


def share(part: float, whole: float) -> float:
    """``part / whole`` clamped to [0, 1]; a sector owed nothing is fully available."""
    if whole <= 0.0:
        return 1.0
    return min(1.0, max(0.0, part / whole))


def volume_of(key: str) -> str | None:
    """The volume a ``detail`` flow in m³/s integrates to over time (``leak_m3s`` → ``leak_m3``: water
    lost, sewage spilled); None for a figure that is not such a flow."""
    return key.removesuffix("s") if key.endswith("_m3s") else None


def service_level(sector: Sector, twin: Any) -> ServiceLevel:
    """The share of ``sector``'s service that ``twin`` (the sector's own twin object) delivers now."""
    level: ServiceLevel = plugin_of(sector).service_level(twin)
    return level


def service_message(sector: Sector, at: datetime, level: ServiceLevel, *, wall: float | None = None) -> dict[str, object]:
    """The JSON object a running twin publishes on ``qeaims-svc/<sector>`` (`sectors.remote.svc_topic`);
    ``at`` is the twin's clock and ``wall`` (POSIX seconds) the moment its step reached it, which maps
    the city's field time to wall time for the scenario KPIs (`qeaims.scenarios.clock`). A non-finite
    detail figure travels as null (JSON has no NaN)."""
    return {
        "sector": sector.value,
        "at": at.isoformat(),
        **({} if wall is None else {"wall": wall}),
        "availability": level.availability,
        "customers_affected": level.customers_affected,
        "critical_affected": level.critical_affected,
        "detail": {k: (v if math.isfinite(v) else None) for k, v in level.detail.items()},
    }
