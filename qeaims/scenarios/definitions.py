"""The scripted scenarios `qeaims scenario run NAME` plays against the running city.

A scenario is data: steps at offsets in *simulated* seconds from its start, each a simulation
control for one sector's twin (`sectors.remote.SimControl`: a fault, an attack, rain) or a
Byzantine vote. Offsets become wall time through the city's speed (`qeaims up --speed`).

Cascades come from the dependency graph, not from the script: a fault on a feeder adds, at the
same instant, the loss of supply at every node that draws power directly from it (`cascade`),
using `DEPENDENT_FAULTS` to say what that loss is in each dependant's twin (a pump stops, a
hospital loses its grid feed and its transfer switch moves it to the generator). Deeper effects
(the hospital's water running out hours later) are left to the twins' own physics and the graph's
time-to-impact, which the controller's cascade analysis reports.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from core.errors import ConfigError
from core.messages import AttackKind, FaultKind, Sector
from sectors.graph import build_graph
from sectors.plugin import plugin_of
from sectors.remote import SimControl

__all__ = ["DEPENDENT_FAULTS", "ByzantineVote", "Scenario", "Step", "all_scenarios", "cascade", "scenario",
           "sector_scenarios"]

DEPENDENT_FAULTS: dict[str, tuple[Sector, FaultKind, str]] = {
    # on-chain node → (its twin, what losing power does there, the twin asset)
    "pump-1": (Sector.WATER, FaultKind.PUMP_FAILURE, "pump:10"),
    "pump-2": (Sector.WATER, FaultKind.PUMP_FAILURE, "pump:335"),
    "lift-1": (Sector.SEWAGE, FaultKind.PUMP_FAILURE, "station:PS1"),
    "hospital-1": (Sector.HEALTHCARE, FaultKind.POWER_LOSS, "hospital-1"),
    "hospital-2": (Sector.HEALTHCARE, FaultKind.POWER_LOSS, "hospital-2"),
    "clinic-1": (Sector.HEALTHCARE, FaultKind.POWER_LOSS, "clinic-1"),
    "dc-primary": (Sector.BANKING, FaultKind.POWER_LOSS, "dc-primary"),
    "dc-standby": (Sector.BANKING, FaultKind.POWER_LOSS, "dc-standby"),
    "atm-cluster-1": (Sector.BANKING, FaultKind.OUTAGE, "atm-cluster-1"),
}


@dataclass(frozen=True)
class Step:
    at_s: float
    sector: Sector
    control: SimControl
    cause: str = ""  # for a cascaded step: the node whose failure caused it

    @property
    def label(self) -> str:
        c = self.control
        return f"{self.sector.value}: {c.op} {c.kind} {c.target}".replace("  ", " ").strip()


@dataclass(frozen=True)
class ByzantineVote:
    """One oracle proposes isolating a healthy node on its own: the quorum must not follow."""

    at_s: float
    oracle: str  # keystore name, e.g. water-4
    node: str


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]
    settle_s: float  # simulated time after the last step for detection, isolation and repair to play out
    byzantine: tuple[ByzantineVote, ...] = field(default_factory=tuple)

    @property
    def sectors(self) -> tuple[Sector, ...]:
        return tuple(dict.fromkeys(s.sector for s in self.steps))

    @property
    def duration_s(self) -> float:
        last = max([s.at_s for s in self.steps] + [b.at_s for b in self.byzantine] + [0.0])
        return last + self.settle_s


def fault(at_s: float, sector: Sector, kind: FaultKind, target: str, **params: float) -> Step:
    return Step(at_s, sector, SimControl(op="inject-fault", kind=kind.value, target=target, params=dict(params)))


def attack(at_s: float, sector: Sector, kind: AttackKind, sensor: str, **params: float) -> Step:
    return Step(at_s, sector, SimControl(op="inject-attack", kind=kind.value, target=sensor, params=dict(params)))


def rain(at_s: float, mm_per_h: float) -> Step:
    return Step(at_s, Sector.SEWAGE, SimControl(op="set-rain", params={"mm_per_h": mm_per_h}))


def cascade(node: str, at_s: float) -> tuple[Step, ...]:
    """The failures a node's loss causes at once in the nodes it powers directly (graph out-edges)."""
    graph = build_graph()
    out = []
    for _, dependant, data in graph.out_edges(node, data=True):
        dep = data["dep"]
        if dep.kind == "power" and dependant in DEPENDENT_FAULTS:
            sector, kind, asset = DEPENDENT_FAULTS[dependant]
            out.append(Step(at_s, sector, SimControl(op="inject-fault", kind=kind.value, target=asset), cause=node))
    return tuple(out)


def _storm_day() -> Scenario:
    steps = (
        rain(0, 25.0),
        fault(600, Sector.ELECTRICITY, FaultKind.LINE_FAULT, "line-7"),
        fault(1800, Sector.WATER, FaultKind.PIPE_BREAK, "pipe:159"),
        fault(2400, Sector.SEWAGE, FaultKind.PUMP_FAILURE, "pump:P1"),
        fault(3000, Sector.TRANSPORTATION, FaultKind.INCIDENT, "link:n11-n12"),
        # a mass-casualty incident at hospital-2: five times its ~5.5 ED attendances an hour, ~40 casualties
        # by the end (7 h of its normal attendances); Sunrise Hospital, Las Vegas, registered 215 casualties
        # in one night in 2017 against ~13 attendances an hour (16 h of them). At x3 (~20 casualties) its
        # 17-space ED had barely begun to queue when the storm day ends (`scripts/health_surge.py`)
        fault(3600, Sector.HEALTHCARE, FaultKind.ADMISSION_SURGE, "hospital-2", severity=5.0),
        fault(4200, Sector.BANKING, FaultKind.OUTAGE, "dc-primary"),
        attack(4800, Sector.WATER, AttackKind.BIAS, "junction:147/pressure_m", magnitude=-12.5),
    )
    return Scenario("storm-day", "a storm over the city: rain on the sewers, then faults across every sector and "
                    "a spoofed pressure sensor", steps, settle_s=5400)


@functools.cache
def _curated() -> dict[str, Scenario]:
    """The city's own scenarios, built on first use (their cascades read the registered sectors' graph)."""
    return {s.name: s for s in (
        Scenario("feeder-fault", "a fault near the head of feeder 1 stops the water pump, the sewage lift station and "
                 "ATMs it powers, and puts hospital-1 at risk through its water supply",
                 (fault(60, Sector.ELECTRICITY, FaultKind.LINE_FAULT, "line-2"), *cascade("feeder-1", 60)),
                 settle_s=3600),
        Scenario("water-main-break", "a trunk main breaks; its valve segment is closed around it",
                 (fault(300, Sector.WATER, FaultKind.PIPE_BREAK, "pipe:159"),), settle_s=7200),
        Scenario("sewage-pump-failure", "the duty pump of lift station PS1 fails in heavy rain",
                 (rain(0, 25.0), fault(900, Sector.SEWAGE, FaultKind.PUMP_FAILURE, "pump:P1")), settle_s=3600),
        Scenario("spoofed-sensor", "an attacker biases a water pressure reading; nothing may be isolated for it",
                 (attack(300, Sector.WATER, AttackKind.BIAS, "junction:147/pressure_m", magnitude=-12.5),),
                 settle_s=3600),
        Scenario("data-centre-outage", "the primary data centre of the payment network goes down",
                 (fault(600, Sector.BANKING, FaultKind.OUTAGE, "dc-primary"),), settle_s=7200),
        Scenario("byzantine-oracle", "a compromised water oracle proposes isolating a healthy pump on its own",
                 (), settle_s=1800, byzantine=(ByzantineVote(120, "water-4", "pump-2"),)),
        _storm_day(),
    )}


def sector_scenarios() -> dict[str, Scenario]:
    """``<sector>-fault`` for every registered sector: its plug-in's default faults (``SectorPlugin.scenario``)."""
    out: dict[str, Scenario] = {}
    for sector in Sector:
        chosen = plugin_of(sector)
        if chosen.scenario:
            steps = tuple(fault(f.at_s, sector, f.kind, f.target, **dict(f.params)) for f in chosen.scenario)
            out[f"{sector.value}-fault"] = Scenario(f"{sector.value}-fault", f"{chosen.title}: the sector's default "
                                                    "fault, as its plug-in defines it", steps,
                                                    settle_s=chosen.scenario_settle_s)
    return out


def all_scenarios() -> dict[str, Scenario]:
    """The city's scenarios, then one per registered sector (a sector added later brings its own)."""
    curated = _curated()
    return {**curated, **{k: v for k, v in sector_scenarios().items() if k not in curated}}


def scenario(name: str) -> Scenario:
    known = all_scenarios()
    try:
        return known[name]
    except KeyError:
        raise ConfigError(f"unknown scenario {name!r}: choose one of {', '.join(known)}") from None
