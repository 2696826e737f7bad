"""The water twin: Net3 on wntr with a clock, faults, cyber attacks, actuators and valve isolation.

Stepping. The twin advances with wntr's *stepwise* WNTRSimulator use: each :meth:`WaterTwin.step`
raises ``options.time.duration`` by ``dt`` and calls ``run_sim`` again; the network object carries
the state (tank levels, link statuses, clock) from one call to the next, so a step solves only the
new period. The alternative — re-running from t = 0 with all accumulated controls — costs O(t)
per step and grows without bound. A step rebuilds wntr's hydraulic model (most of its cost), which
is also what lets a break add a junction mid-run (hence a fresh simulator per step, and the stale
isolation flags cleared by :func:`_forget_isolation`). The cyclic garbage collector is paused
during the solve: wntr's expression trees made it run repeatedly mid-build, doubling step time.

Faults are injected into the physics; attacks (``sectors._twin.MeasurementAttacks``) only into
what the sensors report — except a spoofed command, which really moves an actuator while its
status sensor is frozen to hide it (BATADAL style). :attr:`events` keeps the ground truth.
"""

from __future__ import annotations

import gc
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import networkx as nx
import wntr

from core.messages import ActuatorCommand, AttackKind, FaultKind, Reading, Sector
from sectors._twin import (
    InvalidCommand,
    InvalidFault,
    MeasurementAttacks,
    TwinError,
    TwinEvent,
    UnknownAsset,
    start_attack,
)

from .controls import LinkOverrides
from .faults import BREAK_AREA_FRACTION, LEAK_AREA_FRACTION, close_orifice, open_orifice
from .network import AssetKind, asset_id, load_network, parse_asset_id
from .segments import IsolationPlan, IsolationValve, Placement, ValveSegments, place_valves
from .sensors import (
    SensorSpec,
    ServiceReport,
    build_sensors,
    customers_per_junction,
    service_report,
    true_readings,
)

__all__ = ["BREAK_AREA_FRACTION", "LEAK_AREA_FRACTION", "HydraulicsFailed", "WaterTwin"]

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
_ACTIONS = {
    AssetKind.PIPE: ("open", "close", "auto"),
    AssetKind.VALVE: ("open", "close", "auto"),
    AssetKind.PUMP: ("start", "stop", "auto", "speed"),
    AssetKind.ISOLATION_VALVE: ("open", "close"),
}


def _forget_isolation(wn: Any) -> None:
    """Clear the isolated flags a previous simulator left on the elements.

    A WNTRSimulator clears only the flags *it* set; each step uses a fresh one (a break may have
    added elements), so without this a segment re-opened after a repair would stay dry.
    """
    for _, node in wn.nodes():
        node._is_isolated = False
    for _, link in wn.links():
        link._is_isolated = False


def _natural(name: str) -> tuple[int, str]:
    return (int(name), name) if name.isdigit() else (1 << 30, name)


class HydraulicsFailed(TwinError):
    """The hydraulic solver did not converge for the requested period."""


@contextmanager
def _collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class WaterTwin:
    """A water distribution network that can be stepped, broken, attacked and commanded.

    Parameters: ``inp_file`` (Net3 when None), ``start`` (wall-clock time of simulated t = 0),
    ``valve_placement``/``valves_n``/``valve_seed`` (see :mod:`sectors.water.segments`).
    """

    def __init__(
        self,
        inp_file: Path | None = None,
        *,
        start: datetime = DEFAULT_START,
        valve_placement: Placement = "strategic",
        valves_n: int = 1,
        valve_seed: int = 123,
    ) -> None:
        self.wn: Any = load_network(inp_file)
        self.start = start
        self.segments = ValveSegments(self.wn, place_valves(self.wn, valve_placement, valves_n, valve_seed))
        self.sensors: tuple[SensorSpec, ...] = build_sensors(self.wn)
        self._sensor_ids = {s.sensor_id for s in self.sensors}
        self.customers = customers_per_junction(self.wn)
        self.overrides = LinkOverrides(self.wn)
        self.attacks = MeasurementAttacks()
        self.events: list[TwinEvent] = []
        self.faults: dict[str, tuple[FaultKind, str]] = {}  # asset id -> (kind, leaking junction or pump)
        self._valve_closed: dict[str, bool] = {v.valve_id: False for v in self.segments.valves}
        self._truth: list[Reading] = []
        self.default_step_s = int(self.wn.options.time.hydraulic_timestep)
        self._solve(0)

    # -- clock and hydraulics -------------------------------------------------------------------
    @property
    def now_s(self) -> int:
        """Simulated seconds since ``start`` of the last solved state (what the sensors show)."""
        return int(self.wn._prev_sim_time)

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.now_s)

    def step(self, dt_s: int | None = None) -> list[Reading]:
        """Advance the clock by ``dt_s`` (default: the network's hydraulic timestep, 1 h in Net3),
        solve the hydraulics of the new period and return the readings the sensors now report."""
        dt = self.default_step_s if dt_s is None else int(dt_s)
        if dt <= 0:
            raise ValueError(f"a step must move the clock forward, got dt_s={dt_s}")
        self._solve(self.now_s + dt)
        return self.readings()

    def _solve(self, until_s: int) -> None:
        """Solve up to ``until_s`` exactly, in sub-steps no coarser than the network's own step.

        wntr leaves ``sim_time`` one timestep *past* the last solve (``_prev_sim_time`` is the
        solved time), so the next solve time is set here from the solved time and the sub-step.
        """
        time = self.wn.options.time
        while self.wn._prev_sim_time is None or self.now_s < until_s:
            first = self.wn._prev_sim_time is None
            remaining = until_s - (0 if first else self.now_s)
            sub = remaining if remaining <= self.default_step_s else math.gcd(remaining, self.default_step_s)
            time.hydraulic_timestep = time.report_timestep = max(sub, 1)
            time.duration = until_s
            if not first:
                self.wn.sim_time = self.now_s + time.hydraulic_timestep
            before = self.wn._prev_sim_time
            _forget_isolation(self.wn)
            with warnings.catch_warnings(), _collector_paused():
                warnings.simplefilter("ignore")  # wntr warns on non-convergence; we raise instead
                try:
                    wntr.sim.WNTRSimulator(self.wn).run_sim(convergence_error=True)
                except RuntimeError as exc:
                    raise HydraulicsFailed(
                        f"water hydraulics did not converge up to t={until_s} s: {exc}"
                    ) from exc
            if self.wn._prev_sim_time == before:
                raise HydraulicsFailed(f"water hydraulics made no progress towards t={until_s} s")
        self._truth = true_readings(self.wn, self.sensors, self.now)
        self.attacks.record(self._truth)

    # -- sensors and service --------------------------------------------------------------------
    def readings(self) -> list[Reading]:
        """What the sensors report now: the truth, falsified where an attack is active."""
        return self.attacks.apply(self._truth)

    def true_readings(self) -> list[Reading]:
        """The physics as it is (for scoring detectors, never for the oracles)."""
        return list(self._truth)

    def service(self) -> ServiceReport:
        """Demand requested vs delivered, leak outflow and the customers without water now."""
        return service_report(self.wn, self.customers, self.now_s, self.now)

    # -- faults ---------------------------------------------------------------------------------
    def inject_fault(self, kind: FaultKind, target: str, *, severity: float | None = None) -> None:
        """Break the physics at ``target`` (an asset id) from now on.

        * PIPE_BREAK / LEAK on ``pipe:X``: the pipe is split at its midpoint (``wntr.morph.split_pipe``)
          and an orifice opens at the new junction; on ``junction:X`` the orifice opens there.
          ``severity`` is the orifice area as a fraction of the (largest adjoining) pipe's
          cross-section: defaults :data:`BREAK_AREA_FRACTION` and :data:`LEAK_AREA_FRACTION`.
        * PUMP_FAILURE on ``pump:X``: the pump stays off whatever the controls or commands say.
        """
        element_kind, name = self._existing(target)
        if target in self.faults:
            raise InvalidFault(f"{target} already has a {self.faults[target][0].value} fault; clear it first")
        if kind in (FaultKind.PIPE_BREAK, FaultKind.LEAK):
            junction, area = open_orifice(self.wn, self.segments, kind, element_kind, name, severity)
            self.faults[target] = (kind, junction)
            detail = f"orifice {area:.4f} m2 at junction {junction}"
        elif kind is FaultKind.PUMP_FAILURE:
            if element_kind is not AssetKind.PUMP:
                raise InvalidFault(f"pump-failure needs a pump:NAME target, not {target}")
            self.overrides.fail_pump(name)
            self.faults[target] = (kind, name)
            detail = "pump held off"
        else:
            raise InvalidFault(f"{kind.value} is not a water fault (pipe-break, leak or pump-failure)")
        self.events.append(TwinEvent(self.now, f"fault:{kind.value}", target, detail))

    def clear_fault(self, target: str) -> None:
        """Repair ``target``: the orifice closes or the pump can run again (its controls decide)."""
        try:
            kind, element = self.faults.pop(target)
        except KeyError:
            raise InvalidFault(f"{target} has no active fault to clear") from None
        if kind is FaultKind.PUMP_FAILURE:
            self.overrides.repair_pump(element)
        else:
            close_orifice(self.wn, element)
        self.events.append(TwinEvent(self.now, f"repaired:{kind.value}", target))

    # -- attacks --------------------------------------------------------------------------------
    def inject_attack(
        self,
        kind: AttackKind,
        sensor_id: str,
        *,
        magnitude: float | None = None,
        rate_per_hour: float | None = None,
        window: int | None = None,
        command: ActuatorCommand | None = None,
    ) -> None:
        """Falsify ``sensor_id`` (bias ``magnitude``, drift ``rate_per_hour``, replay the last
        ``window`` samples, frozen), or for SPOOFED_COMMAND carry out the forged ``command`` and
        freeze ``sensor_id`` (normally the actuator's status sensor) so the change stays hidden."""
        if sensor_id not in self._sensor_ids:
            raise UnknownAsset(f"no water sensor {sensor_id!r} (ids look like pump:335/status)")
        start_attack(self.attacks, self.apply, kind, sensor_id, now=self.now, magnitude=magnitude,
                     rate_per_hour=rate_per_hour, window=window, command=command)
        self.events.append(TwinEvent(self.now, f"attack:{kind.value}", sensor_id.split("/")[0], sensor_id))

    def clear_attack(self, sensor_id: str) -> None:
        """The sensor reports the truth again (a spoofed command's effect stays until commanded back)."""
        attack = self.attacks.clear(sensor_id)
        self.events.append(
            TwinEvent(self.now, f"attack-cleared:{attack.kind.value}", sensor_id.split("/")[0])
        )

    # -- actuators ------------------------------------------------------------------------------
    def actuator_id(self, target: str) -> str:
        """The actuator of asset ``target``: ``<asset>/valve`` for pipes and valves, ``<asset>/drive``."""
        element_kind, _ = self._existing(target)
        if element_kind not in _ACTIONS:
            raise UnknownAsset(f"{target} has no actuator (actuated: pipes, valves, pumps, isolation valves)")
        return f"{target}/{'drive' if element_kind is AssetKind.PUMP else 'valve'}"

    def command(
        self, target: str, action: str, value: float | None = None, decision_ref: str = ""
    ) -> ActuatorCommand:
        """A well-formed command for ``target`` (the controller's way to build one)."""
        return ActuatorCommand(
            sector=Sector.WATER,
            asset_id=target,
            actuator_id=self.actuator_id(target),
            action=action,
            value=value,
            decision_ref=decision_ref,
        )

    def apply(self, cmd: ActuatorCommand) -> None:
        """Carry out ``cmd`` from the next step on; raises UnknownAsset or InvalidCommand."""
        if cmd.sector is not Sector.WATER:
            raise InvalidCommand(f"the water twin takes water commands, not {cmd.sector.value}")
        expected = self.actuator_id(cmd.asset_id)
        if cmd.actuator_id != expected:
            raise InvalidCommand(f"actuator {cmd.actuator_id!r} is not on {cmd.asset_id}; use {expected!r}")
        element_kind, name = parse_asset_id(cmd.asset_id)
        if cmd.action not in _ACTIONS[element_kind]:
            raise InvalidCommand(
                f"{cmd.asset_id} cannot {cmd.action!r}; valid: {', '.join(_ACTIONS[element_kind])}"
            )
        if element_kind is AssetKind.ISOLATION_VALVE:
            valve = self.segments.valve(cmd.asset_id)
            self._valve_closed[valve.valve_id] = cmd.action == "close"
            self.overrides.set_valve(self._valve_link(valve), valve.valve_id, closed=cmd.action == "close")
        elif cmd.action == "speed":
            if cmd.value is None:
                raise InvalidCommand(f"speed on {cmd.asset_id} needs a value (fraction of rated speed)")
            try:
                self.overrides.set_speed(name, cmd.value)
            except ValueError as exc:
                raise InvalidCommand(f"{cmd.asset_id}: {exc}") from None
        else:
            state = {"open": True, "start": True, "close": False, "stop": False, "auto": None}[cmd.action]
            self.overrides.set_manual(name, state)
        detail = cmd.action if cmd.value is None else f"{cmd.action}={cmd.value}"
        self.events.append(
            TwinEvent(self.now, "command", cmd.asset_id, f"{detail} {cmd.decision_ref}".strip())
        )

    def valve_closed(self, valve_id: str) -> bool:
        self.segments.valve(valve_id)
        return self._valve_closed[valve_id]

    # -- isolation ------------------------------------------------------------------------------
    def isolation_plan(self, target: str) -> IsolationPlan:
        """The valves that isolate the segment holding ``target`` (a pipe or junction asset id)."""
        element_kind, name = self._existing(target)
        if element_kind is AssetKind.PIPE:
            segment = self.segments.segment_of_link(name)
        elif element_kind is AssetKind.JUNCTION:
            segment = self.segments.segment_of_node(name)
        else:
            raise InvalidCommand(f"isolation works on pipes and junctions, not {target}")
        plan = self.segments.plan(segment)
        if not plan.valves:
            raise InvalidCommand(f"no valve bounds the segment of {target}; it cannot be isolated")
        return plan

    def cut_off_by(self, plan: IsolationPlan) -> tuple[str, ...]:
        """Customer junctions left with no path to any tank or reservoir once ``plan``'s links are
        closed — a topological forecast of who loses water, segment and dead ends beyond it alike
        (the hydraulics after the next step are the authority: :meth:`service`)."""
        graph = nx.Graph(self.wn.to_graph().to_undirected())
        closed = {self._valve_link(v) for v in plan.valves}
        graph.remove_edges_from([(u, v) for u, v, k in self.wn.to_graph().edges(keys=True) if k in closed])
        sources = set(self.wn.tank_name_list) | set(self.wn.reservoir_name_list)
        fed: set[str] = set()
        for component in nx.connected_components(graph):
            if component & sources:
                fed |= component
        return tuple(sorted((j for j in self.customers if j not in fed), key=_natural))

    def isolate(self, target: str, decision_ref: str = "") -> IsolationPlan:
        """Close the boundary valves of ``target``'s segment (through :meth:`apply`, as a controller would)."""
        plan = self.isolation_plan(target)
        for valve in plan.valves:
            self.apply(self.command(valve.valve_id, "close", decision_ref=decision_ref))
        return plan

    def restore(self, plan: IsolationPlan, decision_ref: str = "") -> None:
        """Re-open the valves of ``plan`` (after the repair)."""
        for valve in plan.valves:
            self.apply(self.command(valve.valve_id, "open", decision_ref=decision_ref))

    # -- helpers --------------------------------------------------------------------------------
    def _valve_link(self, valve: IsolationValve) -> str:
        """The wntr link a valve shuts: after a break split its pipe, the half next to its node.

        ``wntr.morph.split_pipe`` keeps the pipe's name on the half from its start node and names
        the half to its end node ``<pipe>_B``; a valve beside the end node sits on that half, and
        shutting the other one would leave the break fed through it (pipe 123, one of the plug-in's
        fault cases, kept leaking at its full rate with its valves "closed").
        """
        half = f"{valve.link}_B"
        if half in self.wn.link_name_list and self.wn.get_link(half).end_node_name == valve.node:
            return half
        return valve.link

    def _existing(self, target: str) -> tuple[AssetKind, str]:
        element_kind, name = parse_asset_id(target)
        if element_kind is AssetKind.ISOLATION_VALVE:
            self.segments.valve(target)
            return element_kind, name
        names = {
            AssetKind.JUNCTION: self.wn.junction_name_list,
            AssetKind.TANK: self.wn.tank_name_list,
            AssetKind.RESERVOIR: self.wn.reservoir_name_list,
            AssetKind.PIPE: self.wn.pipe_name_list,
            AssetKind.PUMP: self.wn.pump_name_list,
            AssetKind.VALVE: self.wn.valve_name_list,
        }[element_kind]
        if name not in names:
            raise UnknownAsset(f"no {element_kind.value} {name!r} in the water network")
        return element_kind, name

    def asset_ids(self, kind: AssetKind) -> list[str]:
        """Asset ids of every element of ``kind`` (isolation valves included)."""
        if kind is AssetKind.ISOLATION_VALVE:
            return [v.valve_id for v in self.segments.valves]
        names = getattr(self.wn, f"{kind.value}_name_list")
        return [asset_id(kind, n) for n in names]
