"""Power flow, energisation and protection on the switchable feeder: the physics of the twin.

Everything here reads and writes a pandapower network and nothing else, so the same code serves
the live twin and "what if" evaluation of switching plans (issue 4's FLISR and reconfiguration).

- :func:`energised_buses` — buses connected to an in-service source through closed switches
  (``pandapower.topology``), which is what a customer experiences as "power on".
- :func:`solve` — Newton–Raphson power flow into a :class:`Snapshot` of plain arrays; dead buses
  and lines read 0 rather than NaN, because sensors on a dead section read 0.
- :func:`protection_trips` — which switches the protection opens so that no faulted branch stays
  energised. Every branch switch is treated as a coordinated protective device, so the device
  nearest the fault on each feeding path opens: the branch's own switch, or, if the branch is fed
  through its hard-wired to-bus (a tie closed onto a fault), the last branch into that bus.
- :func:`check` — min voltage, max loading, losses and the limit violations of a snapshot.

Solver options are fixed for speed (about 30–45 ms per flow here): ``numba=False`` (numba is not
installed; asking for it only logs a warning), ``init="flat"`` and ``lightsim2grid=False`` skip
pandapower's per-call pandas queries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandapower as pp
import pandapower.topology as top
from numpy.typing import NDArray

from sectors.electricity._network import bus_id, customers, line_id

__all__ = ["FlowCheck", "Snapshot", "check", "energised_buses", "is_radial", "protection_trips", "solve"]

_PF_OPTIONS = {
    "numba": False,
    "lightsim2grid": False,
    "init": "flat",
    "calculate_voltage_angles": False,
    "voltage_depend_loads": False,
    "check_connectivity": True,
}
_RECYCLE = {"trafo": False, "gen": False, "bus_pq": True}
_MODEL_KEY = "_qeaims_model_topology"


@dataclass(frozen=True)
class Snapshot:
    """One solved state. Arrays are aligned with pandapower's bus, line and load tables."""

    converged: bool
    energised: NDArray[np.bool_]
    vm_pu: NDArray[np.float64]
    i_ka: NDArray[np.float64]
    loading_percent: NDArray[np.float64]
    p_from_kw: NDArray[np.float64]
    loss_kw: NDArray[np.float64]
    served_kw: NDArray[np.float64]
    source_p_kw: float
    source_q_kvar: float

    @property
    def losses_kw(self) -> float:
        return float(self.loss_kw.sum())


@dataclass(frozen=True)
class FlowCheck:
    """The power-flow verdict on a network state: figures plus every limit it breaks.

    ``violations`` are readable strings (``"bus-18 at 0.894 pu < 0.9"``); ``ok`` means none and a
    converged flow. ``radial`` is reported separately and counts as a violation only when the
    check was asked to require radiality (distribution protection assumes radial operation).
    """

    converged: bool
    min_voltage_pu: float
    min_voltage_bus: str
    max_loading_percent: float
    max_loading_line: str
    losses_kw: float
    served_kw: float
    unserved_kw: float
    customers_unserved: int
    deenergised_buses: tuple[str, ...]
    radial: bool
    violations: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.converged and not self.violations


def _graph(net: pp.pandapowerNet) -> nx.MultiGraph:
    return top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)


def _sources(net: pp.pandapowerNet) -> list[int]:
    grids = net.ext_grid[net.ext_grid.in_service]
    return [int(b) for b in grids.bus]


def energised_buses(net: pp.pandapowerNet, graph: nx.MultiGraph | None = None) -> set[int]:
    """pandapower bus indices connected to an in-service source through closed switches."""
    graph = _graph(net) if graph is None else graph
    live: set[int] = set()
    for source in _sources(net):
        if source not in live:
            live |= {int(b) for b in top.connected_component(graph, source)}
    return live


def is_radial(net: pp.pandapowerNet) -> bool:
    """True when the energised part of the network has no closed loop."""
    graph = _graph(net)
    live = energised_buses(net, graph)
    if not live:
        return True
    sub = graph.subgraph(live)
    components = nx.number_connected_components(sub)
    return bool(sub.number_of_edges() == len(live) - components)


def _fed_faulted_line(net: pp.pandapowerNet, faulted: AbstractSet[int]) -> tuple[int, int] | None:
    """(switch protection opens next, faulted line it clears), or None when no faulted branch is live."""
    if not faulted:
        return None
    graph = _graph(net)
    live = energised_buses(net, graph)
    closed = net.switch.closed.to_numpy()
    for k in sorted(faulted):
        if closed[k] and int(net.line.from_bus.at[k]) in live:
            return k, k
        to_bus = int(net.line.to_bus.at[k])
        if to_bus in live:
            for source in _sources(net):
                if nx.has_path(graph, source, to_bus):
                    path = nx.shortest_path(graph, source, to_bus)
                    feeders = [key[1] for key in graph.get_edge_data(path[-2], to_bus) if key[0] == "line"]
                    return int(feeders[0]), k
    return None


def protection_trips(net: pp.pandapowerNet, faulted: AbstractSet[int]) -> list[tuple[int, int]]:
    """Open switches until no faulted branch is energised; returns (switch, faulted line) in order.

    Switch and line indices coincide (switch k sits on line k)."""
    opened: list[tuple[int, int]] = []
    for _ in range(len(net.switch)):
        hit = _fed_faulted_line(net, faulted)
        if hit is None:
            break
        net.switch.at[hit[0], "closed"] = False
        opened.append(hit)
    return opened


def solve(net: pp.pandapowerNet) -> Snapshot:
    """Run the power flow on ``net`` as it stands (loads, switches, source) and snapshot it."""
    n_bus, n_line = len(net.bus), len(net.line)
    live = energised_buses(net)
    energised = np.zeros(n_bus, dtype=bool)
    energised[sorted(live)] = True
    zero_bus, zero_line = np.zeros(n_bus), np.zeros(n_line)
    dead = Snapshot(True, energised, zero_bus, zero_line, zero_line, zero_line, zero_line,
                    np.zeros(len(net.load)), 0.0, 0.0)
    if not live:
        return dead
    # Between steps usually only the loads change; then pandapower may reuse its internal model
    # (``recycle``), which halves the cost. The key records the topology that model was built for
    # on the net itself, so a what-if run on the same net invalidates it.
    key = (tuple(net.switch.closed.to_numpy().tolist()), tuple(net.ext_grid.in_service.tolist()),
           tuple(net.line.in_service.tolist()))
    reuse = net.get(_MODEL_KEY) == key and "_ppc" in net and net["_ppc"] is not None
    net[_MODEL_KEY] = None
    try:
        pp.runpp(net, recycle=_RECYCLE if reuse else None, **_PF_OPTIONS)
    except pp.LoadflowNotConverged:
        return dataclasses.replace(dead, converged=False)
    net[_MODEL_KEY] = key

    def clean(values: NDArray[np.float64], scale: float = 1.0) -> NDArray[np.float64]:
        out: NDArray[np.float64] = np.nan_to_num(np.asarray(values, dtype=np.float64) * scale, nan=0.0)
        return out

    load_bus = net.load.bus.to_numpy()
    served = np.where(energised[load_bus], clean(net.res_load.p_mw.to_numpy(), 1000.0), 0.0)
    return Snapshot(
        converged=True,
        energised=energised,
        vm_pu=clean(net.res_bus.vm_pu.to_numpy()),
        i_ka=clean(net.res_line.i_ka.to_numpy()),
        loading_percent=clean(net.res_line.loading_percent.to_numpy()),
        p_from_kw=clean(net.res_line.p_from_mw.to_numpy(), 1000.0),
        loss_kw=clean(net.res_line.pl_mw.to_numpy(), 1000.0),
        served_kw=served,
        source_p_kw=float(np.nansum(net.res_ext_grid.p_mw.to_numpy()) * 1000.0),
        source_q_kvar=float(np.nansum(net.res_ext_grid.q_mvar.to_numpy()) * 1000.0),
    )


def check(
    net: pp.pandapowerNet,
    snap: Snapshot,
    *,
    full_demand_kw: NDArray[np.float64],
    v_min: float = 0.9,
    v_max: float = 1.1,
    max_loading: float = 100.0,
    require_radial: bool = True,
    extra: tuple[str, ...] = (),
) -> FlowCheck:
    """Judge ``snap`` against the limits. ``full_demand_kw`` is what loads would draw unshed, so
    shed load counts as unserved; ``extra`` carries violations found outside the flow."""
    live = snap.energised
    radial = is_radial(net)
    violations = list(extra)
    if not snap.converged:
        violations.append("power flow did not converge (voltage collapse)")
    vm = np.where(live, snap.vm_pu, np.inf)
    low_bus = int(np.argmin(vm)) if live.any() else 0
    for b in np.flatnonzero(live & ((snap.vm_pu < v_min) | (snap.vm_pu > v_max))):
        violations.append(f"{bus_id(int(b))} at {snap.vm_pu[b]:.4f} pu outside [{v_min}, {v_max}]")
    high_line = int(np.argmax(snap.loading_percent))
    for k in np.flatnonzero(snap.loading_percent > max_loading):
        violations.append(f"{line_id(int(k))} at {snap.loading_percent[k]:.1f} % > {max_loading:g} %")
    if require_radial and not radial:
        violations.append("energised network is meshed (a closed loop)")
    served = float(snap.served_kw.sum())
    load_live = live[net.load.bus.to_numpy()]
    unserved_customers = int(customers(net)[(~load_live) | (full_demand_kw - snap.served_kw > 1e-6)].sum())
    return FlowCheck(
        converged=snap.converged,
        min_voltage_pu=float(snap.vm_pu[low_bus]) if live.any() else 0.0,
        min_voltage_bus=bus_id(low_bus),
        max_loading_percent=float(snap.loading_percent[high_line]),
        max_loading_line=line_id(high_line),
        losses_kw=snap.losses_kw,
        served_kw=served,
        unserved_kw=float(full_demand_kw.sum()) - served,
        customers_unserved=unserved_customers,
        deenergised_buses=tuple(bus_id(int(b)) for b in np.flatnonzero(~live)),
        radial=radial,
        violations=tuple(violations),
    )
