"""The facts behind the dependency graph: how long each dependant keeps working without a supply.

Why a table here rather than numbers scattered through the graph code: every buffer is an
assumption an operator should be able to read and challenge in one place, and the hospital and
data-centre figures come from the twins' own specs (:data:`sectors.healthcare.DEV_HOSPITALS`,
:data:`sectors.banking.DEV_BANKING`), so the graph and the twins cannot disagree.

``buffer_s`` is the time from losing the supply to losing the function; ``effect`` says whether
the dependant then *fails* (and passes the failure on) or is *degraded* (keeps part of its
service, so nothing downstream fails because of it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sectors.banking import DEV_BANKING
from sectors.healthcare import DEV_HOSPITALS

__all__ = [
    "EXTRA_EDGES",
    "EXTRA_NODES",
    "Dependency",
    "DependencyKind",
    "Effect",
    "chain_dependency",
    "power_response",
]

DependencyKind = Literal["power", "water", "road", "data", "sewage"]
Effect = Literal["fails", "degrades"]

HOSPITAL_BACKUP_H = {h.hospital_id: h.backup_hours for h in DEV_HOSPITALS}
HOSPITAL_WATER_H = {h.hospital_id: h.water_storage_hours for h in DEV_HOSPITALS}
UPS_MIN = {dc.dc_id: dc.ups_minutes for dc in (DEV_BANKING.primary, DEV_BANKING.standby)}
UPS_MIN.update({c.cluster_id: c.ups_minutes for c in DEV_BANKING.atm_clusters})
DISPATCH_BACKUP_H = 72.0  # emergency dispatch centres keep generators with days of fuel
LIFT_WET_WELL_MIN = 30.0  # a lift station's wet well fills and overflows ~30 min after its pumps stop
CLEARWELL_H = 12.0  # treated-water storage keeps the trunk main pressurised for ~12 h
BANK_FAILOVER_S = DEV_BANKING.failover_s


@dataclass(frozen=True)
class Dependency:
    """What an edge supplier → dependant means when the supplier fails."""

    kind: DependencyKind
    buffer_s: float
    effect: Effect
    response: str
    mitigation: str = ""


def power_response(node: str, kind: str) -> Dependency:
    """How an asset of ``kind`` responds to losing its feeder (the real behaviour of each sector)."""
    if kind in ("hospital", "clinic"):
        hours = HOSPITAL_BACKUP_H.get(node, 4.0)
        return Dependency("power", hours * 3600.0, "degrades", f"backup generator for {hours:g} h, then degraded",
                          "transfer to backup, refuel, priority restoration of the feeder")
    if kind == "dispatch":
        return Dependency("power", DISPATCH_BACKUP_H * 3600.0, "fails", f"generator for {DISPATCH_BACKUP_H:g} h",
                          "refuel the generator")
    if kind in ("data-centre", "atm-cluster"):
        minutes = UPS_MIN.get(node, 10.0)
        mitigation = "fail over to the standby data centre" if kind == "data-centre" else "drain the cluster"
        return Dependency("power", minutes * 60.0, "fails", f"UPS for {minutes:g} min, then down", mitigation)
    if kind == "lift-station":
        return Dependency("power", LIFT_WET_WELL_MIN * 60.0, "fails",
                          f"pumps stop; wet well overflows after {LIFT_WET_WELL_MIN:g} min", "start a standby pump")
    if kind == "signal-group":
        return Dependency("power", 0.0, "fails", "signals go dark at once", "retime neighbouring signals")
    if kind == "pump-station":
        return Dependency("power", 0.0, "fails", "pump stops when its feeder drops", "restore the feeder first")
    return Dependency("power", 0.0, "fails", f"{kind} stops when its feeder drops")


def _hospital_water(node: str) -> Dependency:
    hours = HOSPITAL_WATER_H[node]
    return Dependency("water", hours * 3600.0, "degrades", f"on-site water storage for {hours:g} h, then degraded",
                      "tanker supply, restore the pump")


EXTRA_NODES: tuple[tuple[str, str, str, int], ...] = (
    ("atm-cluster-2", "banking", "atm-cluster", 2),
)
"""Finer-grained assets the twins model that are not (yet) registered on-chain."""

EXTRA_EDGES: tuple[tuple[str, str, Dependency], ...] = (
    ("feeder-3", "atm-cluster-2", power_response("atm-cluster-2", "atm-cluster")),
    ("treatment-1", "main-1", Dependency("water", CLEARWELL_H * 3600.0, "fails",
                                         f"clearwell keeps the main in service {CLEARWELL_H:g} h")),
    ("main-1", "pump-1", Dependency("water", 0.0, "fails", "pump loses suction when the main is dry")),
    ("main-1", "pump-2", Dependency("water", 0.0, "fails", "pump loses suction when the main is dry")),
    ("bridge-1", "hospital-1", Dependency("road", 0.0, "degrades", "ambulances re-routed, longer access times",
                                          "re-route traffic")),
    ("signals-east", "hospital-2", Dependency("road", 0.0, "degrades", "congested access around the hospital",
                                              "retime signals, police control")),
    ("switch-1", "atm-cluster-1", Dependency("data", 0.0, "fails", "ATMs cannot authorise")),
    ("switch-1", "atm-cluster-2", Dependency("data", 0.0, "fails", "ATMs cannot authorise")),
    ("wwtp-1", "outfall-1", Dependency("sewage", 0.0, "degrades", "untreated discharge at the outfall")),
)
"""Dependencies the on-chain registry does not list (supplier, dependant, how it responds)."""


def chain_dependency(supplier_sector: str, node: str, kind: str) -> Dependency:
    """The response for a dependency registered on-chain (``DevNode.depends_on``)."""
    if supplier_sector == "electricity":
        return power_response(node, kind)
    if supplier_sector == "water" and kind in ("hospital", "clinic"):
        return _hospital_water(node)
    if supplier_sector == "banking":
        return Dependency("data", 0.0, "fails", "no data centre behind the switch",
                          f"fail over to the standby data centre ({BANK_FAILOVER_S:g} s)")
    return Dependency("water" if supplier_sector == "water" else "data", 0.0, "fails", f"{kind} stops")
