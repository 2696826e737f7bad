"""Acting on what an isolation puts at risk before the cascade reaches it.

The cascade analysis (`sectors.graph.at_risk`) says which assets an isolated node's outage reaches,
how (the last dependency on the way: power, water, data, road, sewage) and when. For the ones a
device can protect, the controller acts at once rather than waiting for the failure to arrive:

============================  ===========  ==================================================
dependant                     through      protective action (sector: actuator action)
============================  ===========  ==================================================
hospital, clinic              power        healthcare: ``<hospital>/power backup`` — transfer
                                           to the generator while the grid is still stable
                                           (a closed transition, not a blackout start)
ATM cluster                   power        banking: ``<cluster>/mode drain`` — stop taking
                                           cards before its UPS runs out mid-transaction
data centre                   power        banking: ``<switch>/route failover`` — move the
                                           payment switch to the standby before the UPS ends
lift station (the one the     power        sewage: ``orifice:OR1/gate open`` — divert inflow to
sewage twin models)                        storage while the pumps cannot run
============================  ===========  ==================================================

An ATM cluster behind a failing *switch* (data) is not drained: the isolation's own plan fails the
switch over, and draining would cut the service the fail-over keeps. Everything else at risk is listed with its mitigation as advice (a water tanker, signal retiming
by police): no device here can do it. Each protective command has an inverse that the controller
sends when the isolated node is reintegrated, so the city returns to normal operation.

Priority: most critical first, then soonest impact (the order `at_risk` returns); protective
commands are sent in that order. The commands' decision is the cascade event itself
(``event:<controller>:<seq>``), which the devices check on the chain before acting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from core.messages import Sector
from sectors.anchors import anchor_node
from sectors.graph import AtRisk, build_graph

__all__ = ["Protection", "inverse", "protections"]

SEWAGE_DIVERSION_GATE = "orifice:OR1/gate"
SEWAGE_STATION_PUMP = "pump:P1"  # the station whose inflow the gate diverts
_INVERSE = {("power", "backup"): "restore", ("mode", "drain"): "restore", ("route", "failover"): "failback",
            ("gate", "open"): "close"}


@dataclass(frozen=True)
class Protection:
    """What the controller does (or advises) for one asset at risk."""

    node: str
    sector: str
    criticality: int
    minutes_to_impact: float
    via: str  # the dependency through which the failure arrives
    command: dict[str, Any] | None  # {"sector", "asset", "actuator", "action"} or None: advice only
    advice: str

    def summary(self) -> dict[str, Any]:
        return {"node": self.node, "sector": self.sector, "criticality": self.criticality,
                "minutes_to_impact": self.minutes_to_impact, "via": self.via, "command": self.command,
                "advice": self.advice}


def _spec(sector: Sector, actuator: str, action: str) -> dict[str, Any]:
    return {"sector": sector.value, "asset": actuator.split("/")[0], "actuator": actuator, "action": action}


def _command(graph: nx.DiGraph, node: str, kind: str, via: str) -> dict[str, Any] | None:
    if kind in ("hospital", "clinic") and via == "power":
        return _spec(Sector.HEALTHCARE, f"{node}/power", "backup")
    if kind == "atm-cluster" and via == "power":
        return _spec(Sector.BANKING, f"{node}/mode", "drain")
    if kind == "data-centre" and via == "power":
        switch = next((s for s in graph.successors(node) if graph.nodes[s].get("kind") == "payment-switch"), None)
        return None if switch is None else _spec(Sector.BANKING, f"{switch}/route", "failover")
    if kind == "lift-station" and via == "power" and node == anchor_node(Sector.SEWAGE, SEWAGE_STATION_PUMP):
        return _spec(Sector.SEWAGE, SEWAGE_DIVERSION_GATE, "open")
    return None


def protections(risks: list[AtRisk], graph: nx.DiGraph | None = None) -> list[Protection]:
    """The protective action (or advice) for each asset at risk, in `risks`' priority order.

    A command appears once even if two assets call for it (two ATM clusters on one failing switch
    each get their own; one data centre's switch is failed over once).
    """
    g = build_graph() if graph is None else graph
    out: list[Protection] = []
    seen: set[tuple[str, str]] = set()
    for risk in risks:
        supplier, node = risk.path[-2], risk.path[-1]
        dep = g.edges[supplier, node]["dep"]
        command = _command(g, node, str(g.nodes[node].get("kind", "")), dep.kind)
        if command is not None:
            key = (command["actuator"], command["action"])
            command = None if key in seen else command
            seen.add(key)
        out.append(Protection(node, risk.sector, risk.criticality, round(risk.time_to_impact_s / 60, 1),
                              dep.kind, command, dep.mitigation or dep.response))
    return out


def inverse(command: dict[str, Any]) -> dict[str, Any]:
    """The command that undoes a protective `command` once the isolated node is back."""
    name = str(command["actuator"]).rsplit("/", 1)[-1]
    return {**command, "action": _INVERSE[(name, str(command["action"]))]}
