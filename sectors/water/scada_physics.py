"""SCADA physics for a water network: residuals that a falsified reading cannot satisfy all at once.

A data-driven detector learns what normal rows look like; an attacker who replays a normal day or
draws a plausible level curve gives it normal-looking rows. The network's physics ties the readings
together, so a falsified reading must be falsified consistently with every other reading it is
physically coupled to — which a concealment that touches a few sensors does not do. From an EPANET
network (`.inp`, read by wntr) and the SCADA columns that meter it (`ScadaMap`), each row gives five
families of residuals, each naming the sensors it involves:

- **status ↔ flow** (`status:<link>`): a pump or valve reported off with flow through it, or on with
  none. Physically exact (a closed pump passes no water); no fitting.
- **control consistency** (`control:<link>`): the network's own level controls (``[CONTROLS]``: "PU1
  OPEN IF T1 BELOW 4, CLOSED IF ABOVE 6.3") say a pump is on below its start level and off above
  its stop level; a reported status on the wrong side of either, by more than `Thresholds.control_m`,
  means the status or the level is false (a replayed level while the PLC acts on the true one).
- **mass balance** (`balance:<zone>`): the network split at its metered links (pumps and valves with
  a flow column) into zones; in each zone with metered tanks, Σ area·Δlevel = Σ metered inflow −
  Σ metered outflow − demand. Tank areas come from the `.inp` (diameter); the demand, which no meter
  sees, is estimated per hour of the week (the demand patterns are weekly) as the median of the
  balance over normal rows. The residual is summed over `balance_rows` rows (causal): instantaneous
  hourly flows integrate a pump that switched within the hour badly, and that error averages out
  over a few hours while a falsified level or flow accumulates.
- **hydraulic consistency** (`hydraulic:<sensor>`): a running pump's flow is fixed by the heads at
  its two ends (its curve), and a pressure by the hydraulic grade of its zone. Each metered pump or
  valve flow with a status (while on) and each pressure is predicted from its hydraulic neighbourhood
  — the levels of the tanks and the pressures in the zones it touches, the statuses of the links
  into those zones, the zone demand's hour — by a least-squares fit on normal rows: a linearised
  pump curve and head-loss relation whose *structure* comes from the network and whose coefficients
  come from normal data. A pump slowed to 0.9 of its speed moves far off it (BATADAL attack 5).
- **simulation** (`simulated:<sensor>`, `Snapshot`): one EPANET solve per row (wntr's toolkit), driven
  by the reported tank levels and pump and valve statuses, with the network's own demand patterns at
  the row's hour of the week as the demand estimate; each metered flow and pressure is compared
  with the solve. This is the model-based form of the previous check: it needs no fitting but
  carries the demand model's error (C-Town: median |error| 0.4 L/s on PU1's 100 L/s, up to a few
  metres of pressure at the hours the real demand strays from its pattern), where the linearised
  relations are exact to the data's rounding but only as good as a year of normal rows spans.
  Both are kept: a concealment must defeat each.

Thresholds (`Thresholds`) are set on normal rows only (`fit`): each fitted residual's largest
absolute value on them times `margin`, plus the residual's share of the readings' rounding
(`resolution`: a reading rounded to 0.01 moves a linear residual by up to 0.005·Σ|coefficients|).
On BATADAL's training set 1 (8,761 rows) no row is over any threshold; the status, control and
simulation checks need no fitted coefficient, and the thresholds are in the eval's JSON
(``settings.physics.thresholds``).

Streaming: every residual of a row uses that row and at most `balance_rows` rows before it
(`PhysicsModel.context`); `PhysicsModel.stream()` scores rows one at a time with that bounded
history, and `residuals` on a whole matrix gives the same values (it is the same code).

Live in the city's water twin (issue 17: the same code scores the twin's readings), through the water
rules (`sectors.water.rules`), which add which instrument is the liar (a meter is vouched for by the
balance of the junction at its far end): the zones and their balance (`zones`, `sealed`, `tank_area`,
`balance_residual`: the twin meters every pipe and pump, so each tank is a zone of its own with no
demand to fit), status ↔ flow (`status_flow`), the level controls (`level_controls`) and the solve
(`Snapshot` with `shut_eps`: the pipes' commanded states from their meters, as the controls and the
controller's isolations shut pipes the solve has no status for). Not the fitted relations, nor a
fitted threshold: the rules' thresholds are physical and stated with their normal-operation figures.
"""

from __future__ import annotations

import contextlib
import pickle
import re
import tempfile
import threading
import warnings
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import wntr
from numpy.typing import NDArray
from wntr.epanet.toolkit import ENepanet
from wntr.epanet.util import EN

from sectors.invariants import CLOCK, Violation, Window

__all__ = [
    "FLOW_UNITS_M3S",
    "Check",
    "LevelControl",
    "PhysicsModel",
    "ScadaMap",
    "Snapshot",
    "Thresholds",
    "Zone",
    "balance_residual",
    "cycle_rows",
    "demand_period_hours",
    "fit",
    "level_controls",
    "load_network",
    "scada_map",
    "sealed",
    "status_flow",
    "tank_area",
    "twin_map",
    "zones",
]

FloatArray = NDArray[np.float64]
HOURS_PER_WEEK = 168


def demand_period_hours(wn: Any) -> int:
    """Hours after which the network's demand patterns repeat: the longest pattern (C-Town's are
    weekly, 168 h; Net3's daily, 24 h), at most a week; a day if it has none."""
    step = float(wn.options.time.pattern_timestep) / 3600
    lengths = [round(len(wn.get_pattern(name).multipliers) * step) for name in wn.pattern_name_list]
    return int(min(max([24, *lengths]), HOURS_PER_WEEK))


@dataclass(frozen=True)
class ScadaMap:
    """Which SCADA column meters which network element (column names, by element name)."""

    level: Mapping[str, str]  # tank → level column (m above the tank's bottom)
    flow: Mapping[str, str]  # pump or valve → flow column (the network's flow unit)
    status: Mapping[str, str]  # pump or valve → status column (1 on/open, 0 off/closed)
    pressure: Mapping[str, str]  # junction → pressure column (m)
    row_seconds: float = 3600.0  # the time between rows
    flow_m3_s: float = 0.001  # one flow unit in m³/s (LPS: 0.001)


FLOW_UNITS_M3S = {"LPS": 0.001, "LPM": 0.001 / 60, "MLD": 1000 / 86400, "CMH": 1 / 3600, "CMD": 1 / 86400,
                  "CFS": 0.0283168, "GPM": 6.30902e-5, "MGD": 0.0438126, "IMGD": 0.0526168, "AFD": 0.0142764}
"""One flow unit of an EPANET file, in m³/s."""

SCADA_PREFIXES = {"L_": "level", "F_": "flow", "S_": "status", "P_": "pressure"}


def scada_map(columns: Sequence[str], wn: Any, *, row_seconds: float = 3600.0) -> ScadaMap:
    """The map for columns named ``L_<tank>``, ``F_<link>``, ``S_<link>``, ``P_<junction>`` (BATADAL's
    convention), keeping only the elements the network has."""
    kinds: dict[str, dict[str, str]] = {k: {} for k in SCADA_PREFIXES.values()}
    links, tanks, junctions = set(wn.link_name_list), set(wn.tank_name_list), set(wn.junction_name_list)
    for col in columns:
        m = re.fullmatch(r"([LFSP]_)(.+)", col.strip())
        if not m:
            continue
        kind, name = SCADA_PREFIXES[m.group(1)], m.group(2)
        known = tanks if kind == "level" else junctions if kind == "pressure" else links
        if name in known:
            kinds[kind][name] = col
    flow_unit = str(getattr(wn.options.hydraulic, "inpfile_units", "LPS")).upper()
    if flow_unit not in FLOW_UNITS_M3S:
        raise ValueError(f"unknown EPANET flow unit {flow_unit!r} (known: {', '.join(FLOW_UNITS_M3S)})")
    return ScadaMap(kinds["level"], kinds["flow"], kinds["status"], kinds["pressure"], row_seconds,
                    FLOW_UNITS_M3S[flow_unit])


def twin_map(wn: Any, *, row_seconds: float = 30.0) -> ScadaMap:
    """The map for the water twin's sensor ids (`sectors.water.sensors`: ``tank:1/level_m``,
    ``pump:10/flow_m3s``, ``pump:10/status``, ``pipe:20/flow_m3s``, ``junction:15/pressure_m``; SI)."""
    flow = {p: f"pump:{p}/flow_m3s" for p in wn.pump_name_list} | {p: f"pipe:{p}/flow_m3s" for p in wn.pipe_name_list}
    return ScadaMap({t: f"tank:{t}/level_m" for t in wn.tank_name_list}, flow,
                    {p: f"pump:{p}/status" for p in wn.pump_name_list},
                    {j: f"junction:{j}/pressure_m" for j in wn.junction_name_list}, row_seconds, 1.0)


def load_network(path: Path) -> Any:
    """The EPANET network at `path` (a wntr model); wntr's note on curves no link uses is dropped (C-Town
    keeps efficiency curves for its pumps that EPANET's hydraulics do not read)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Not all curves were used")
        return wntr.network.WaterNetworkModel(str(path))


@dataclass(frozen=True)
class Zone:
    """Part of the network between metered links: its tanks and the metered links into and out of it."""

    name: str
    tanks: tuple[str, ...]
    inflow: tuple[str, ...]
    outflow: tuple[str, ...]
    junctions: frozenset[str]


def _graph(wn: Any, cut: set[str]) -> Any:
    g: Any = nx.Graph()
    g.add_nodes_from(wn.node_name_list)
    g.add_edges_from((link.start_node_name, link.end_node_name) for name, link in wn.links() if name not in cut)
    return g


def zones(wn: Any, smap: ScadaMap, *, pressure: bool = False) -> list[Zone]:
    """The network cut at its metered links (a link with a flow column), one zone per piece.

    Unmetered links (pipes, an unmetered pressure-reducing valve) join their ends: the water through
    them is part of the zone's demand. A zone is named after its first tank, or its first node.
    `pressure`: cut at the pumps and valves instead (pressure zones: a pipe, metered or not, carries
    its ends' heads into each other); the zone's inflow and outflow are still its metered links.
    """
    cut = set(wn.pump_name_list) | set(wn.valve_name_list) if pressure else set(smap.flow)
    g = _graph(wn, cut)
    metered = [(name, link.start_node_name, link.end_node_name) for name, link in wn.links()
               if name in cut and name in smap.flow]
    tanks = set(wn.tank_name_list)
    out = []
    for nodes in sorted(nx.connected_components(g), key=min):
        zone_tanks = tuple(sorted(n for n in nodes if n in tanks))
        inflow = tuple(sorted(n for n, a, b in metered if b in nodes and a not in nodes))
        outflow = tuple(sorted(n for n, a, b in metered if a in nodes and b not in nodes))
        out.append(Zone(zone_tanks[0] if zone_tanks else min(nodes), zone_tanks, inflow, outflow,
                        frozenset(nodes)))
    return out


def tank_area(wn: Any, tank: str) -> float:
    """A tank's plan area (m²) from its diameter in the network (EPANET's tanks are cylinders)."""
    return float(np.pi * wn.get_node(tank).diameter ** 2 / 4)


def sealed(wn: Any, zone: Zone) -> bool:
    """Whether a zone's water is all metered: besides its tanks it holds only junctions no customer draws
    from (no base demand), so its balance needs no demand estimate and no fitting — Σ area·Δlevel is
    the metered net inflow, exactly. The water twin meters every pipe and pump, so each of its tanks is
    such a zone on its own, and its balance is checked live with no training (`sectors.water.rules`)."""
    tanks = set(zone.tanks)
    for name in zone.junctions - tanks:
        node = wn.get_node(name)
        if type(node).__name__ != "Junction" or any(float(d.base_value) != 0.0 for d in node.demand_timeseries_list):
            return False
    return bool(tanks)


def balance_residual(volume: FloatArray, net_inflow: FloatArray, per_row: float) -> FloatArray:
    """Conservation of mass, row by row: how far the stored volume moved between each row and the one
    before it other than the metered net inflow says (one value per row after the first).

    The inflow over a row is the mean of its two ends' flows times the row's length (`per_row`, the
    row's seconds in the flows' unit): a row's reading is a sample, and the trapezoid is exact for a
    flow that changes linearly between samples. It also absorbs the water twin's lag (its tank levels
    are those at the start of the row's period, the flows those at its end): on 6 hours of the twin's
    normal 30-second rows, tank 1's level agrees with its outlet's meter to 0.0016 m a row
    (`scripts/water_rule_margins.py`). The same function scores BATADAL's hourly zones
    (`PhysicsModel`) and the twin's tanks (`sectors.water.rules.TankBalance`)."""
    volume, net_inflow = np.asarray(volume, dtype=float), np.asarray(net_inflow, dtype=float)
    return np.asarray(np.diff(volume) - per_row * ((net_inflow[1:] + net_inflow[:-1]) / 2), dtype=np.float64)


def status_flow(flow: FloatArray, status: FloatArray, eps: float) -> FloatArray:
    """Status ↔ flow, row by row: 1 where a link's status contradicts its metered flow — reported on
    (status over 0.5) with less than `eps` through it, or off with more than `eps` either way — else 0.
    A closed pump passes no water: this needs no fitting, only the flow that counts as flow (`eps`:
    BATADAL's `Thresholds.flow_off` share of the link's running flow; the twin's exact meters,
    `sectors.water.rules.FLOW_EPS_M3S`)."""
    flow, on = np.asarray(flow, dtype=float), np.asarray(status, dtype=float) > 0.5
    return np.asarray(np.where(on, flow < eps, np.abs(flow) > eps), dtype=np.float64)


@dataclass(frozen=True)
class LevelControl:
    """A link the network's controls start and stop by a tank's level (``[CONTROLS]``)."""

    tank: str
    start: float  # the level it is started at
    stop: float  # the level it is stopped at
    rising: bool  # started by the level rising past `start` (a wet well); else falling below it (a tank it fills)


def level_controls(wn: Any, smap: ScadaMap) -> dict[str, LevelControl]:
    """link → its level control, from the network's tank-level controls on the status of a link with a
    status column: a start and a stop on the same tank, on opposite sides. The one reading of the
    network's controls for both BATADAL's control check (`PhysicsModel.controls`) and the twin's
    live pump rule (`sectors.water.rules.PumpCalledFor`). wntr keeps a control's parts private;
    they are read here only."""
    starts: dict[str, tuple[str, float, bool]] = {}
    stops: dict[str, tuple[str, float, bool]] = {}
    for _, control in wn.controls():
        cond = control.condition
        tank = str(getattr(getattr(cond, "_source_obj", None), "name", ""))
        if type(cond).__name__ != "TankLevelCondition" or tank not in smap.level:
            continue
        relation = getattr(cond, "_relation", None)
        threshold = float(getattr(cond, "_threshold", np.nan))
        for action in control.actions():
            target = str(getattr(getattr(action, "_target_obj", None), "name", ""))
            if getattr(action, "_attribute", "") != "status" or target not in smap.status:
                continue
            below = getattr(relation, "name", "") in ("lt", "le")
            if int(getattr(action, "_value", -1)) == 1:
                starts[target] = (tank, threshold, not below)
            else:
                stops[target] = (tank, threshold, below)
    return {link: LevelControl(tank, start, stops[link][1], rising) for link, (tank, start, rising) in starts.items()
            if link in stops and stops[link][0] == tank and stops[link][2] == rising}


def _level_controls(wn: Any, smap: ScadaMap) -> dict[str, tuple[str, float, float]]:
    """link → (tank, start level, stop level) of the links that fill a tank (`level_controls`; the
    control check reads a start below and a stop above)."""
    return {link: (c.tank, c.start, c.stop) for link, c in level_controls(wn, smap).items() if not c.rising}


@dataclass(frozen=True)
class Check:
    """One residual: its name, the sensors it names when it fires, and its threshold."""

    name: str
    sensors: tuple[str, ...]
    threshold: float = np.inf


@dataclass(frozen=True)
class Thresholds:
    """How the fitted residuals' thresholds are set on normal rows (see the module docstring).

    `margin` (1.5): a threshold half again over the largest residual a year of normal rows shows,
    for demand the year did not see. `resolution` (0.01): the readings' rounding (BATADAL's
    published rows carry two decimals). `control_m` (0.05 m): a status may lag its control's level
    by the level a tank moves between a switch and the next row; none of the 8,761 normal rows of
    BATADAL's training set 1 is past its control level at all, so 5 rounding steps is slack.
    `flow_off`: a flow over this share of the link's median running flow counts as flow.
    `min_rows` (100, four days of hourly rows): a link must have run this many normal rows for its
    flow to get a fitted relation or a threshold of its own; C-Town's PU3, PU5 and PU9 never run in
    training set 1, PU6 16 rows and PU11 4. Below it the linearised relation is not fitted, and the
    solve's threshold for its flow is at least the median of the well-run links' (a pump that never
    ran in training would otherwise get the data's rounding as its threshold, and its first normal
    run would fire).
    """

    margin: float = 1.5
    resolution: float = 0.01
    control_m: float = 0.05
    flow_off: float = 0.05
    balance_rows: int = 6
    simulate: bool = True  # the per-row EPANET solve (`Snapshot`)
    min_rows: int = 100
    linear: bool = True  # the linearised hydraulic relations (off where a short training run spans too little)


@dataclass
class _Linear:
    target: int  # column index of the predicted reading
    features: tuple[int, ...]
    gate: int | None  # status column: predicted only while it reads on
    coef: FloatArray = field(default_factory=lambda: np.zeros(0))


class Snapshot:
    """One EPANET solve per row: the network at the row's reported tank levels and link statuses.

    The network's own level controls are removed (the reported statuses are what the solve must
    obey: a status the controls would override is the control check's business), the demand is
    the network's own demand patterns at the row's hour of the week, and the solve is a single
    period (EPANET's toolkit through wntr: ~1 ms a row on C-Town). It gives each metered flow and
    pressure as the physics has it, given only the levels, the statuses and the hour.

    `shut_eps` (off by default; BATADAL's pipes carry no meters): the commanded state of every metered
    link without a status column (a pipe), read from its meter — closed in the solve when it reads
    within `shut_eps` of no flow, open otherwise. A pipe the network's controls open and close (Net3's
    330, by tank 1's level) or the controller shuts (an isolation) has no status for the solve to
    obey, and without this the solve routes water through it. A junction whose every link then reads
    no flow (a dead end behind a stopped pump: Net3's junction 10 behind the Lake pump, 601 behind
    the shut pipe 330) is cut off in the solve, its pressure undetermined: it is not judged (NaN).
    """

    def __init__(self, wn: Any, smap: ScadaMap, columns: Sequence[str], *, shut_eps: float | None = None) -> None:
        with tempfile.TemporaryDirectory(prefix="scada-physics-") as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copy = pickle.loads(pickle.dumps(wn))
            for name in list(copy.control_name_list):
                copy.remove_control(name)
            copy.options.time.duration = 0
            path = Path(tmp) / "snapshot.inp"
            wntr.network.io.write_inpfile(copy, str(path), units="LPS")  # SI: pressures in m
            self.inp = path.read_text()
        self._open()
        col = {c: i for i, c in enumerate(columns)}
        self.tanks = [(self.en.ENgetnodeindex(t), col[c]) for t, c in smap.level.items()]
        self.status = [(self.en.ENgetlinkindex(k), col[c]) for k, c in smap.status.items()]
        self.targets = [(self.en.ENgetlinkindex(k), col[c], True) for k, c in smap.flow.items()] + \
                       [(self.en.ENgetnodeindex(j), col[c], False) for j, c in smap.pressure.items()]
        self.names = tuple(columns[c] for _, c, _ in self.targets)
        self.flow_scale = 0.001 / smap.flow_m3_s  # the solve's L/s in the readings' flow unit
        self.cache: OrderedDict[bytes, FloatArray] = OrderedDict()
        self.shut_eps = shut_eps
        self.pipes = [(self.en.ENgetlinkindex(k), col[c]) for k, c in smap.flow.items()
                      if shut_eps is not None and k not in smap.status]
        metered = {k: col[c] for k, c in smap.flow.items()}
        # per target: the flow columns of every link at a judged junction, if all its links are metered
        self.cut: list[tuple[int, ...]] = []
        for (_, _, link), name in zip(self.targets, self.names, strict=True):
            node = next((j for j, c in smap.pressure.items() if c == name), None) if not link else None
            at = [str(k) for k in wn.get_links_for_node(node)] if node is not None and shut_eps is not None else []
            self.cut.append(tuple(metered[k] for k in at) if at and all(k in metered for k in at) else ())

    def _open(self) -> None:
        """EPANET's project from the network text (kept, so a pickled model reopens it)."""
        self._dir = tempfile.TemporaryDirectory(prefix="scada-physics-")
        path = Path(self._dir.name) / "snapshot.inp"
        path.write_text(self.inp)
        self.en = ENepanet()
        self.en.ENopen(str(path), str(path.with_suffix(".rpt")), str(path.with_suffix(".bin")))
        # one EPANET project is not thread-safe: a sector's oracles share a process (and the water rules'
        # cached Snapshot), and two threads inside one solve corrupted the C library's heap ("double free
        # or corruption", the storm day's water oracles, 2026-12-06); solves take turns
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for live in ("en", "_dir", "_lock"):
            state.pop(live, None)
        state["cache"] = OrderedDict()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("shut_eps", None)  # a model pickled before `shut_eps`
        state.setdefault("pipes", [])
        state.setdefault("cut", [() for _ in state.get("targets", ())])
        self.__dict__.update(state)
        self._open()

    def solve(self, row: FloatArray, how: int) -> FloatArray:
        """The simulated value of each target (`names`) for one row; NaN where EPANET fails."""
        with self._lock:
            return self._solve(row, how)

    def _solve(self, row: FloatArray, how: int) -> FloatArray:
        key = row.tobytes() + int(how).to_bytes(4, "little")
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        en, out = self.en, np.full(len(self.targets), np.nan)
        try:
            for index, c in self.tanks:
                en.ENsetnodevalue(index, EN.TANKLEVEL, float(row[c]))
            for index, c in self.status:
                en.ENsetlinkvalue(index, EN.INITSTATUS, 1.0 if row[c] > 0.5 else 0.0)
            for index, c in self.pipes:  # commanded pipe states, from their meters (`shut_eps`)
                en.ENsetlinkvalue(index, EN.INITSTATUS, 0.0 if abs(float(row[c])) <= float(self.shut_eps or 0.0) else 1.0)
            en.ENsettimeparam(EN.PATTERNSTART, int(how) * 3600)  # EPANET wraps each pattern itself
            en.ENopenH()
            en.ENinitH(0)
            en.ENrunH()
            for i, (index, _, link) in enumerate(self.targets):
                out[i] = en.ENgetlinkvalue(index, EN.FLOW) * self.flow_scale if link \
                    else en.ENgetnodevalue(index, EN.PRESSURE)
                if self.cut[i] and all(abs(float(row[c])) <= float(self.shut_eps or 0.0) for c in self.cut[i]):
                    out[i] = np.nan  # every link of the junction reads no flow: cut off, its head undetermined
        except Exception:  # noqa: BLE001 - an unsolvable state gives no evidence either way
            out[:] = np.nan
        finally:
            with contextlib.suppress(Exception):
                en.ENcloseH()
        self.cache[key] = out
        if len(self.cache) > 64:
            self.cache.popitem(last=False)
        return out

    def residuals(self, x: FloatArray, how: NDArray[np.int64]) -> FloatArray:
        """Reported minus simulated, per row and target."""
        sims = np.array([self.solve(row, int(h)) for row, h in zip(x, how, strict=True)]).reshape(len(x), -1)
        return np.asarray(x[:, [c for _, c, _ in self.targets]] - sims, dtype=np.float64)


@dataclass
class PhysicsModel:
    """The fitted residuals of one network and SCADA map (`fit`); `residuals`, `flags`, `stream`."""

    columns: tuple[str, ...]
    checks: list[Check]
    smap: ScadaMap
    zone_list: list[Zone]
    controls: dict[str, tuple[str, float, float]]
    areas: dict[str, float]
    settings: Thresholds
    on_flow: dict[str, float] = field(default_factory=dict)
    demand: FloatArray = field(default_factory=lambda: np.zeros((HOURS_PER_WEEK, 0)))
    period: int = HOURS_PER_WEEK  # hours after which the demand repeats (`demand_period_hours`)
    linear: list[_Linear] = field(default_factory=list)
    snapshot: Snapshot | None = None

    @property
    def context(self) -> int:
        """Rows of history a row's residuals use (the mass balance's window)."""
        return self.settings.balance_rows

    def _col(self, name: str) -> int:
        return self.columns.index(name)

    def _raw(self, x: FloatArray, how: NDArray[np.int64]) -> FloatArray:
        """All residuals of every row of `x` (rows in time order; the first `context` rows lack history)."""
        s, out = self.smap, []
        for link, fcol in s.flow.items():  # status ↔ flow
            if link not in s.status:
                continue
            eps = self.settings.flow_off * self.on_flow.get(link, 1.0)
            out.append(status_flow(x[:, self._col(fcol)], x[:, self._col(s.status[link])], eps))
        for link, (tank, lo, hi) in self.controls.items():  # control consistency
            level, on = x[:, self._col(s.level[tank])], x[:, self._col(s.status[link])] > 0.5
            out.append(np.where(on, np.maximum(level - hi, 0.0), np.maximum(lo - level, 0.0)))
        out.extend(self._balances(x, how).T)
        for lin in self.linear:  # hydraulic consistency
            r = x[:, lin.target] - np.column_stack([np.ones(len(x)), x[:, list(lin.features)]]) @ lin.coef
            out.append(r if lin.gate is None else np.where(x[:, lin.gate] > 0.5, r, 0.0))
        if self.snapshot is not None:  # the EPANET solve
            out.extend(self.snapshot.residuals(x, how).T)
        return np.column_stack(out) if out else np.zeros((len(x), 0))

    def _balance_terms(self, x: FloatArray) -> FloatArray:
        """Per zone and row: Σ area·Δlevel − net metered inflow over the row before (m³), no demand."""
        s = self.smap
        per_row = s.row_seconds * s.flow_m3_s
        cols = []
        for z in self._balanced():
            vol = sum(self.areas[t] * x[:, self._col(s.level[t])] for t in z.tanks)
            net = sum(x[:, self._col(s.flow[k])] for k in z.inflow) - sum(x[:, self._col(s.flow[k])] for k in z.outflow)
            cols.append(np.concatenate([[np.nan], balance_residual(np.asarray(vol, dtype=float) * np.ones(len(x)),
                                                                   np.asarray(net, dtype=float) * np.ones(len(x)),
                                                                   per_row)]))
        return np.column_stack(cols) if cols else np.zeros((len(x), 0))

    def _balanced(self) -> list[Zone]:
        return [z for z in self.zone_list if z.tanks and (z.inflow or z.outflow)]

    def _balances(self, x: FloatArray, how: NDArray[np.int64]) -> FloatArray:
        terms = self._balance_terms(x)
        if terms.shape[1] == 0:
            return terms
        err = terms - self.demand[how % self.period]
        w = self.settings.balance_rows
        out = np.full_like(err, np.nan)
        csum = np.vstack([np.zeros((1, err.shape[1])), np.cumsum(np.nan_to_num(err), axis=0)])
        if len(err) > w:  # rows i-w+1..i: each has a row before it
            out[w:] = csum[w + 1:] - csum[1:len(err) - w + 1]
        return out

    def residuals(self, x: FloatArray, how: NDArray[np.int64]) -> FloatArray:
        """Every residual of every row, each divided by its threshold (over 1: the check fires)."""
        thr = np.array([c.threshold for c in self.checks])
        return np.asarray(np.abs(np.nan_to_num(self._raw(x, how))) / thr, dtype=np.float64)

    def flags(self, x: FloatArray, how: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether any check fires on each row."""
        return np.asarray((self.residuals(x, how) > 1.0).any(axis=1))

    def blame(self, ratios: FloatArray) -> list[str]:
        """The sensors named by the checks that fire in one row of `residuals`, worst check first."""
        names: list[str] = []
        for i in np.argsort(-ratios):
            if ratios[i] <= 1.0:
                break
            names.extend(c for c in self.checks[i].sensors if c not in names)
        return names

    def stream(self) -> PhysicsStream:
        return PhysicsStream(self)

    def violations(self, window: Window) -> list[Violation]:
        """The checks the newest row of a twin's window breaks, as `sectors.invariants` rules report.

        The window (sensor id → recent values, `twin_map`'s ids) must hold every column the model
        was fitted on, finite, for `context` + 1 rows; otherwise nothing is judged (an instrument
        missing leaves nothing to check). The hour is the rows' clock (`CLOCK`, hour of the day), so
        only a network whose demand repeats daily is judged (the twin's Net3; `period`); without
        the clock nothing is, as the solve and the balance would guess the hour. A broken check is instruments
        contradicting each other, not a failed asset (`fault` False): its suspects are the
        instruments it read, worst check first.
        """
        rows = self.context + 1
        clock = window.get(CLOCK)
        if self.period > 24:
            return []  # the clock tells the hour of the day only, and the demand is weekly
        series = [window.get(c) for c in self.columns]
        if clock is None or len(clock) < rows or any(v is None or len(v) < rows for v in series):
            return []
        x = np.column_stack([np.asarray(v, dtype=float)[-rows:] for v in series if v is not None])
        if not np.isfinite(x).all():
            return []
        how = (np.asarray(clock, dtype=float)[-rows:] // 3600).astype(np.int64)
        ratios = self.residuals(x, how)[-1]
        out = []
        for i in np.argsort(-ratios):
            if ratios[i] <= 1.0:
                break
            check = self.checks[i]
            out.append(Violation(asset=check.sensors[0].split("/", 1)[0], sensor=check.sensors[0],
                                 reads=check.sensors[1:], fault=False, suspects=check.sensors,
                                 message=f"{check.name} off by {ratios[i]:.1f}× its threshold "
                                         f"({', '.join(check.sensors[:4])})"))
        return out


class PhysicsStream:
    """Rows one at a time with `context` rows of history: the residual ratios of the newest row."""

    def __init__(self, model: PhysicsModel) -> None:
        self.model = model
        self.rows: deque[FloatArray] = deque(maxlen=model.context + 1)
        self.hows: deque[int] = deque(maxlen=model.context + 1)

    def push(self, row: FloatArray, how: int) -> FloatArray:
        self.rows.append(np.asarray(row, dtype=float))
        self.hows.append(how)
        ratios = self.model.residuals(np.vstack(self.rows), np.array(self.hows, dtype=np.int64))
        return np.asarray(ratios[-1])


NEAREST_GAUGES = 6
"""Pressure gauges a pressure is predicted from: the nearest ones of its pressure zone (by pipes
between them). C-Town's largest pressure zone has 7 gauges, so there it is all the others; the
twin's Net3, a gauge at each of its 92 junctions in one zone, would otherwise fit 90 coefficients."""


def cycle_rows(smap: ScadaMap, columns: Sequence[str], normal: FloatArray) -> int | None:
    """Rows of one fill-and-draw cycle of the network's tanks, from normal rows: the longest median
    interval between starts among the links that start at least once a day (the pumps that cycle
    by their tanks' levels). None if no link cycles that often.

    A concealed tank (a replayed or offset level) is contradicted by the control and balance checks
    once a cycle, when the true level crosses a start or stop level; between those rows it may look
    consistent. So an alarm held for one cycle bridges the gaps of one concealment and no more.
    """
    per_day = 86400 / smap.row_seconds
    medians = []
    for col in smap.status.values():
        on = normal[:, list(columns).index(col)] > 0.5
        starts = np.flatnonzero(on[1:] & ~on[:-1])
        if len(starts) >= 2 and len(starts) >= len(normal) / per_day:
            medians.append(float(np.median(np.diff(starts))))
    return round(max(medians)) if medians else None


def _neighbourhood(model: PhysicsModel, chosen: Sequence[Zone], exclude: str,
                   graph: Any = None, near: str = "") -> tuple[int, ...]:
    """Feature columns of the zones given: tank levels, statuses of metered links touching them and
    pressures (the `NEAREST_GAUGES` nearest to `near` in `graph`, when given)."""
    s, cols = model.smap, []
    for z in chosen:
        cols += [s.level[t] for t in z.tanks if t in s.level]
        cols += [s.status[k] for k in (*z.inflow, *z.outflow) if k in s.status]
        gauges = [j for j in s.pressure if j in z.junctions and s.pressure[j] != exclude]
        if graph is not None and len(gauges) > NEAREST_GAUGES:
            hops = nx.single_source_shortest_path_length(graph, near)
            gauges = sorted(gauges, key=lambda j: (hops.get(j, len(hops)), j))[:NEAREST_GAUGES]
        cols += [s.pressure[j] for j in gauges]
    return tuple(sorted({model._col(c) for c in cols if c != exclude}))


def _zone_of(zone_list: Sequence[Zone], node: str) -> Zone:
    return next(z for z in zone_list if node in z.junctions)


def fit(wn: Any, smap: ScadaMap, columns: Sequence[str], normal: FloatArray, how: NDArray[np.int64],
        settings: Thresholds = Thresholds()) -> PhysicsModel:
    """Fit demand profiles, linear hydraulic relations and thresholds on normal rows (time order).

    `how`: each row's hour counted from a time the demand patterns start at (BATADAL: Monday 00:00,
    C-Town's patterns being weekly; the twin: the field's midnight, Net3's being daily).
    """
    zone_list = zones(wn, smap)
    areas = {t: tank_area(wn, t) for t in smap.level}
    model = PhysicsModel(tuple(columns), [], smap, zone_list, _level_controls(wn, smap), areas, settings)
    for link, fcol in smap.flow.items():
        if link in smap.status:
            running = normal[normal[:, model._col(smap.status[link])] > 0.5, model._col(fcol)]
            model.on_flow[link] = float(np.median(running)) if len(running) else 1.0
    terms = model._balance_terms(normal)
    model.period = demand_period_hours(wn)
    h = how % model.period
    model.demand = np.zeros((model.period, terms.shape[1]))
    for k in range(model.period):
        rows = terms[(h == k) & ~np.isnan(terms).any(axis=1)]
        model.demand[k] = np.median(rows, axis=0) if len(rows) else 0.0
    for link, fcol in smap.flow.items():  # hydraulic consistency: flows of running pumps and open valves
        if link not in smap.status or not settings.linear:
            continue  # a pipe's flow is nonlinear in its heads (no curve to linearise); balance and solve cover it
        lk = wn.get_link(link)
        ends = [_zone_of(zone_list, lk.start_node_name), _zone_of(zone_list, lk.end_node_name)]
        model.linear.append(_Linear(model._col(fcol), _neighbourhood(model, ends, fcol), model._col(smap.status[link])))
    pressure_zones = zones(wn, smap, pressure=True)
    graph = _graph(wn, set(wn.pump_name_list) | set(wn.valve_name_list))
    for junction, pcol in (smap.pressure if settings.linear else {}).items():  # ... and pressures, in their zone
        chosen = [_zone_of(pressure_zones, junction)]
        model.linear.append(_Linear(model._col(pcol), _neighbourhood(model, chosen, pcol, graph, junction), None))
    learned = []
    for lin in model.linear:
        rows = normal if lin.gate is None else normal[normal[:, lin.gate] > 0.5]
        if len(rows) < max(settings.min_rows, 10 * (len(lin.features) + 1)):
            continue  # a link that (almost) never ran teaches no relation: its flow is left to the solve
        a = np.column_stack([np.ones(len(rows)), rows[:, list(lin.features)]])
        lin.coef = np.asarray(np.linalg.lstsq(a, rows[:, lin.target], rcond=None)[0], dtype=np.float64)
        learned.append(lin)
    model.linear = learned
    if settings.simulate:
        model.snapshot = Snapshot(wn, smap, columns)
    model.checks = _checks(model, normal, how)
    return model


def _checks(model: PhysicsModel, normal: FloatArray, how: NDArray[np.int64]) -> list[Check]:
    """The checks in `_raw`'s order, thresholds from the normal rows' residuals."""
    s, st = model.smap, model.settings
    checks = [Check(f"status:{link}", (s.status[link], fcol), 0.5) for link, fcol in s.flow.items() if link in s.status]
    checks += [Check(f"control:{link}", (s.status[link], s.level[tank]), st.control_m)
               for link, (tank, _, _) in model.controls.items()]
    raw = np.abs(model._raw(normal, how))
    n_fixed = len(checks)
    for i, z in enumerate(model._balanced()):
        worst = float(np.nanmax(raw[:, n_fixed + i]))
        names = tuple(s.level[t] for t in z.tanks) + tuple(s.flow[k] for k in (*z.inflow, *z.outflow))
        rounding = st.resolution / 2 * (sum(model.areas[t] for t in z.tanks) * 2
                                        + s.row_seconds * s.flow_m3_s * len(z.inflow + z.outflow)) * st.balance_rows
        checks.append(Check(f"balance:{z.name}", names, worst * st.margin + rounding))
    offset = n_fixed + len(model._balanced())
    for i, lin in enumerate(model.linear):
        worst = float(np.nanmax(raw[:, offset + i]))
        rounding = st.resolution / 2 * (1 + float(np.abs(lin.coef[1:]).sum()))
        checks.append(Check(f"hydraulic:{model.columns[lin.target]}", (model.columns[lin.target],),
                            worst * st.margin + rounding))
    offset += len(model.linear)
    names = model.snapshot.names if model.snapshot else ()
    on_rows = {c: int((normal[:, model._col(s.status[k])] > 0.5).sum()) for k, c in s.flow.items() if k in s.status}
    sim = [float(np.nanmax(raw[:, offset + i])) * st.margin + st.resolution / 2 for i in range(len(names))]
    ran = [t for name, t in zip(names, sim, strict=True) if on_rows.get(name, 0) >= st.min_rows]
    typical = float(np.median(ran)) if ran else 0.0
    for name, threshold in zip(names, sim, strict=True):
        if on_rows.get(name, st.min_rows) < st.min_rows:  # a flow the training rows (almost) never saw run
            threshold = max(threshold, typical)
        checks.append(Check(f"simulated:{name}", (name,), threshold))
    return checks
