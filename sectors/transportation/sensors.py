"""What the road sensors measure, read from uxsim's live state.

Loop detectors on every link report flow (veh/h, counted at the link entry over the last
sampling period: counting, not uxsim's instantaneous density × speed, so a closed link reads
0 straight away and platoon granularity averages out), mean speed (km/h) and density (veh/km)
averaged over the period (each uxsim step's state, as a loop averages occupancy and spot speeds).
A video automatic-incident-detection (AID) camera on every link raises
``stopped_vehicle`` (1) while a stopped vehicle blocks the lane, as field AID does within seconds
of a crash, and the police dispatch's CAD, a different system, shows ``cad_incident`` (1) once a
crash on the link has been called in (`~.twin.CAD_DELAY_S`); the rule that weighs it against the loops is `sectors.transportation.rules`.

Every signalised junction reports its controller's health as the urban traffic control (UTC)
centre polls it, ``node:nRC/controller_ok`` (1: running its timing plan; 0: dark or in flash, or not
answering), and the police dispatch's CAD, once a driver has called the dark signal in, shows
``cad_signal_out`` (1) for it (`~.twin.CAD_DELAY_S`, as for a crash). Travel-time sensors on the monitored OD pairs report what a
navigation service would: the quickest route's time through the current link travel times,
which is what rises when an incident queues traffic and what a closure lengthens.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from core.messages import Reading, Sector

from .network import MONITORED_OD, SIGNALS, link_name, links

__all__ = ["LINK_QUANTITIES", "SIGNAL_QUANTITIES", "SensorSpec", "build_sensors", "od_times", "sample_all"]

LINK_QUANTITIES: tuple[tuple[str, str], ...] = (
    ("flow_veh_h", "veh/h"),
    ("speed_kmh", "km/h"),
    ("density_veh_km", "veh/km"),
    ("stopped_vehicle", "alarm"),
    ("cad_incident", "record"),
)
SIGNAL_QUANTITIES: tuple[tuple[str, str], ...] = (
    ("controller_ok", "status"),
    ("cad_signal_out", "record"),
)
"""What each signalised junction reports: its controller's health as the UTC centre polls it, and
the police dispatch's record of a dark signal (two systems apart: `sectors.transportation.rules`)."""
_UNREACHABLE_S = 24 * 3600.0
"""Reported when no open route connects an OD pair (a reading must be finite)."""


@dataclass(frozen=True)
class SensorSpec:
    """One sensor: ``link:n10-n11/flow_veh_h`` or ``od:n10-n13/travel_time_s``."""

    asset_id: str
    quantity: str
    unit: str

    @property
    def sensor_id(self) -> str:
        return f"{self.asset_id}/{self.quantity}"


def build_sensors() -> tuple[SensorSpec, ...]:
    link_specs = [
        SensorSpec(f"link:{link_name(a, b)}", q, u) for a, b, _ in links() for q, u in LINK_QUANTITIES
    ]
    signal_specs = [SensorSpec(f"node:{n}", q, u) for n in SIGNALS for q, u in SIGNAL_QUANTITIES]
    od_specs = [SensorSpec(f"od:{o}-{d}", "travel_time_s", "s") for o, d in MONITORED_OD]
    return (*link_specs, *signal_specs, *od_specs)


def od_times(world: Any, speeds: Mapping[str, float] | None = None, blocked: Collection[str] = ()) -> dict[str, float]:
    """Quickest-route time (s) per monitored OD over link travel times; closed and ``blocked`` links skipped.

    A link where a stopped vehicle blocks the lane is routed around, as a navigation service does
    once the crash is reported: judged by its probes' speed alone, a blocked street that drivers
    have already left reads its free-flow speed (nobody is on it to be slow), and the quickest
    route would run straight through the crash.

    ``speeds`` (link name → m/s) are the speeds a navigation service would route by: its probes'
    speeds over the last minutes (`~.twin.TransportTwin` passes the loops' means over
    :data:`~.twin.NAV_WINDOW_S`). Without them, each link's speed now: a platoon stopped at a red
    light then reads as a blocked street, and the quickest route jumps to a detour and back."""
    n = len(world.NODES)
    cost = np.zeros((n, n))
    for link in world.LINKS:
        if link.capacity_in > 0 and link.name not in blocked:
            speed = float(link.speed) if speeds is None else speeds.get(link.name, float(link.speed))
            cost[link.start_node.id, link.end_node.id] = link.length / max(speed, link.u / 100)
    dist = dijkstra(csr_matrix(cost), directed=True)
    out: dict[str, float] = {}
    for o, d in MONITORED_OD:
        value = float(dist[world.get_node(o).id, world.get_node(d).id])
        out[f"od:{o}-{d}"] = value if np.isfinite(value) else _UNREACHABLE_S
    return out


def sample_all(
    world: Any, specs: tuple[SensorSpec, ...], last_counts: dict[str, float], period_s: float, at: datetime,
    *, means: dict[str, tuple[float, float]] | None = None, blocked: Collection[str] = (),
    reported: Collection[str] = (), nav_speeds: Mapping[str, float] | None = None,
    dark: Collection[str] = (), reported_dark: Collection[str] = (),
) -> list[Reading]:
    """Every sensor's true value now; ``last_counts`` (link name → cumulative entries at the last
    sample) is updated in place so the next flow reading counts only the new period. ``means`` (link
    name → mean speed m/s and density veh/m over the period) makes speed and density period
    averages, as loop detectors report them; without it they are the link's state now. ``blocked``:
    the links where a stopped vehicle blocks the lane (what the AID cameras see); ``reported``: the
    links with an incident record in the police dispatch's CAD; ``nav_speeds``: what the travel-time
    sensors route by (`od_times`); ``dark``: the signalised junctions whose controller is dark (what
    the UTC centre's poll shows), ``reported_dark``: those the police dispatch has on record."""
    values: dict[str, float] = {}
    for link in world.LINKS:
        count = float(link.cum_arrival[-1]) if link.cum_arrival else 0.0
        entered = count - last_counts.get(link.name, 0.0)
        last_counts[link.name] = count
        asset = f"link:{link.name}"
        values[f"{asset}/flow_veh_h"] = entered * 3600.0 / period_s if period_s > 0 else 0.0
        values[f"{asset}/stopped_vehicle"] = float(link.name in blocked)
        values[f"{asset}/cad_incident"] = float(link.name in reported)
        speed, density = (means or {}).get(link.name, (float(link.speed), float(link.density)))
        values[f"{asset}/speed_kmh"] = speed * 3.6
        values[f"{asset}/density_veh_km"] = density * 1000.0
    for node in SIGNALS:
        values[f"node:{node}/controller_ok"] = float(node not in dark)
        values[f"node:{node}/cad_signal_out"] = float(node in reported_dark)
    # the travel-time sensors route by probe speeds only: what the city's own navigation feed knows
    # before anyone tells it of a crash (routing around reported crashes is the service's truth,
    # `~.twin.TransportTwin.service`); a sensor that jumped with the camera's alarm, in a way no
    # training day showed, was quarantined as falsified
    for asset, seconds in od_times(world, nav_speeds).items():
        values[f"{asset}/travel_time_s"] = seconds
    return [
        Reading(
            sector=Sector.TRANSPORTATION,
            asset_id=s.asset_id,
            sensor_id=s.sensor_id,
            quantity=s.quantity,
            unit=s.unit,
            value=values[s.sensor_id],
            timestamp=at,
        )
        for s in specs
    ]
