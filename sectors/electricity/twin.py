"""The electricity twin: the IEEE 33-bus feeder with a clock, sensors, actuators, faults and attacks.

The physics is pandapower's power flow on the switchable feeder of :mod:`._network`; nothing is
hard-coded. The twin keeps three kinds of state beside the network: the clock (which drives the
daily load profile), the physical faults (which hold protection open and surge loads) and the
attacks (which falsify what sensors report, never what happens). Every change is logged as a
:class:`~sectors._twin.TwinEvent` — the ground truth a scenario scores detection and restoration
against.

Decisions belong on-chain, so :meth:`ElectricityTwin.power_flow_check` can evaluate a switching
plan (switch states, load shedding) *without* touching the live feeder: the controller chooses
among plans with it and only then sends :class:`~core.messages.ActuatorCommand`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import networkx as nx
import numpy as np
import pandapower as pp
from numpy.typing import NDArray

from core.messages import ActuatorCommand, AttackKind, FaultKind, Reading, Sector
from sectors._twin import (
    Attack,
    InvalidAttack,
    InvalidCommand,
    InvalidFault,
    MeasurementAttacks,
    TwinError,
    TwinEvent,
)
from sectors.electricity import _flow
from sectors.electricity._graph import downstream_of, switch_graph
from sectors.electricity._network import (
    FEEDER_ID,
    SUBSTATION_ID,
    TIE_BRANCHES,
    asset_index,
    build_network,
    line_id,
    switch_id,
)
from sectors.electricity._profile import load_multipliers
from sectors.electricity._sensors import sensor_readings

__all__ = ["DEFAULT_START", "ElectricityTwin"]

DEFAULT_START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
"""A Monday midnight: the profile starts at its night-time low."""

_SWITCH_ACTIONS = ("open", "close")
_LOAD_ACTIONS = ("shed", "restore")


@dataclass
class _Fault:
    kind: FaultKind
    at: datetime
    tripped: list[int] = field(default_factory=list)
    loads: list[int] = field(default_factory=list)
    factor: float = 1.0


class ElectricityTwin:
    """One feeder: ``step`` the clock, read ``readings()``, act with ``apply``, break it with faults.

    ``seed`` and ``noise`` fix the per-load deviation from the daily profile (``noise=0`` gives the
    profile exactly); ``history`` is how many past samples per sensor a replay attack can reuse.
    """

    sector = Sector.ELECTRICITY

    def __init__(
        self, *, seed: int = 0, start: datetime = DEFAULT_START, noise: float = 0.02, history: int = 1440
    ) -> None:
        self._net = build_network()
        self._seed, self._noise = seed, noise
        self._now = _aware(start)
        self._nominal_p = self._net.load.p_mw.to_numpy().copy()
        self._nominal_q = self._net.load.q_mvar.to_numpy().copy()
        n_load = len(self._nominal_p)
        self._surge, self._shed = np.ones(n_load), np.zeros(n_load)
        self._mult = np.ones(n_load)
        self._normally_open = frozenset(switch_id(b - 1) for b in TIE_BRANCHES)
        self._faults: dict[str, _Fault] = {}
        self._events: list[TwinEvent] = []
        self._attacks = MeasurementAttacks(history=history)
        self._true: list[Reading] = []
        self._set_time(self._now)
        self._refresh()
        self._attacks.record(self._true)

    # --- clock and sensors -------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self._now

    @property
    def net(self) -> pp.pandapowerNet:
        """The live pandapower network, for inspection only: change it through the twin's API."""
        return self._net

    @property
    def events(self) -> tuple[TwinEvent, ...]:
        return tuple(self._events)

    @property
    def faults(self) -> dict[str, FaultKind]:
        """Active physical faults by target asset id."""
        return {target: fault.kind for target, fault in self._faults.items()}

    @property
    def attacks(self) -> dict[str, Attack]:
        return self._attacks.active

    def step(self, t: datetime) -> list[Reading]:
        """Advance the clock to ``t``, re-draw the loads, re-run the power flow; returns what the
        sensors report at ``t`` (falsified where an attack is active)."""
        t = _aware(t)
        if t < self._now:
            raise TwinError(f"the twin's clock is at {self._now.isoformat()}; it cannot step back to {t.isoformat()}")
        self._set_time(t)
        self._refresh()
        self._attacks.record(self._true)
        return self.readings()

    def advance(self, seconds: float = 60.0) -> list[Reading]:
        """:meth:`step` to ``now + seconds``."""
        return self.step(self._now + timedelta(seconds=seconds))

    def readings(self) -> list[Reading]:
        """What the sensors report now: true values, except where an attack falsifies them."""
        return self._attacks.apply(self._true)

    def true_readings(self) -> list[Reading]:
        """Ground truth for every sensor (what detectors are scored against)."""
        return list(self._true)

    def sensor_ids(self) -> list[str]:
        return [r.sensor_id for r in self._true]

    # --- helpers the controller plans with -----------------------------------------------------

    @property
    def normally_open(self) -> frozenset[str]:
        """The tie switches (sw-33 … sw-37), open in the feeder's normal configuration."""
        return self._normally_open

    def switch_states(self) -> dict[str, bool]:
        """Every switch id → closed?"""
        return {switch_id(s): bool(c) for s, c in enumerate(self._net.switch.closed.to_numpy())}

    def energised_buses(self) -> frozenset[str]:
        return frozenset(f"bus-{b + 1}" for b in np.flatnonzero(self._snap.energised))

    def switch_graph(self) -> nx.MultiGraph:
        """Buses as nodes, branches as edges keyed by line id, with switch state, tie flag, fault,
        rating and impedance on each edge (see :func:`._graph.switch_graph`)."""
        return switch_graph(self._net, self._snap, self._demand(), self._faulted_lines())

    def total_losses_kw(self) -> float:
        return self._snap.losses_kw

    def power_flow_check(
        self,
        *,
        switches: Mapping[str, bool] | None = None,
        shed: Mapping[str, float] | None = None,
        v_min: float = 0.9,
        v_max: float = 1.1,
        max_loading: float = 100.0,
        require_radial: bool = True,
    ) -> _flow.FlowCheck:
        """Judge the feeder now, or — given ``switches`` (id → closed) and/or ``shed`` (load id →
        fraction) — the feeder as it would be after that plan, leaving the live twin untouched.
        A plan that closes onto a faulted branch is evaluated after the trip it would cause, and
        the trip is listed as a violation."""
        demand = self._demand()

        def judged(net: pp.pandapowerNet, snap: _flow.Snapshot, extra: tuple[str, ...] = ()) -> _flow.FlowCheck:
            return _flow.check(
                net, snap, full_demand_kw=demand, v_min=v_min, v_max=v_max, max_loading=max_loading,
                require_radial=require_radial, extra=extra,
            )

        if not switches and not shed:
            return judged(self._net, self._snap)
        net, saved_closed = self._net, self._net.switch.closed.copy()
        saved_shed = self._shed.copy()
        try:
            for sid, closed in (switches or {}).items():
                net.switch.at[asset_index(sid, "sw"), "closed"] = bool(closed)
            for lid, fraction in (shed or {}).items():
                self._shed[self._load_row(lid)] = _fraction(lid, fraction)
            self._write_loads()
            trips = _flow.protection_trips(net, self._faulted_lines())
            extra = tuple(f"energises faulted {line_id(k)}: {switch_id(s)} would trip" for s, k in trips)
            return judged(net, _flow.solve(net), extra)
        finally:
            net.switch["closed"] = saved_closed
            self._shed = saved_shed
            self._write_loads()

    # --- actuators -------------------------------------------------------------------------------

    def apply(self, command: ActuatorCommand) -> tuple[TwinEvent, ...]:
        """Carry out ``command`` (``sw-k``: open/close; ``load-k``: shed [value = fraction, default
        1] / restore) and re-solve. Returns the events it caused, protection trips included."""
        if command.sector is not Sector.ELECTRICITY:
            raise InvalidCommand(f"{command.sector.value} command sent to the electricity twin")
        if command.actuator_id != command.asset_id:
            raise InvalidCommand(f"actuator {command.actuator_id!r} does not belong to {command.asset_id!r}")
        before = len(self._events)
        self._execute(command.asset_id, command.action, command.value, origin="command")
        return tuple(self._events[before:])

    def actuators(self) -> dict[str, tuple[str, ...]]:
        """Every actuator id → the actions it accepts."""
        out: dict[str, tuple[str, ...]] = {switch_id(s): _SWITCH_ACTIONS for s in range(len(self._net.switch))}
        out.update({f"load-{int(b) + 1}": _LOAD_ACTIONS for b in self._net.load.bus})
        return out

    def _execute(self, asset: str, action: str, value: float | None, *, origin: str) -> None:
        if asset.startswith("sw-"):
            s = asset_index(asset, "sw")
            if action not in _SWITCH_ACTIONS or value is not None:
                raise InvalidCommand(f"{asset} accepts {' or '.join(_SWITCH_ACTIONS)} without a value, not {action!r}")
            closed = action == "close"
            if bool(self._net.switch.closed.at[s]) != closed:
                self._net.switch.at[s, "closed"] = closed
                self._log("switched", asset, f"{action} ({origin})")
        elif asset.startswith("load-"):
            row = self._load_row(asset)
            if action == "shed":
                self._shed[row] = _fraction(asset, 1.0 if value is None else value)
            elif action == "restore" and value is None:
                self._shed[row] = 0.0
            else:
                raise InvalidCommand(f"{asset} accepts shed [value 0..1] or restore, not {action!r} {value!r}")
            self._log(f"load-{action}", asset, f"{self._shed[row]:.2f} shed ({origin})")
        else:
            raise InvalidCommand(f"{asset!r} has no actuator: choose a switch (sw-1..sw-37) or a load (load-2..load-33)")
        self._refresh()

    # --- faults ------------------------------------------------------------------------------------

    def inject_fault(self, kind: FaultKind, target: str, *, factor: float = 1.5,
                     severity: float | None = None) -> TwinEvent:
        """Break something: ``line-fault`` on ``line-k`` (protection opens the nearest switch),
        ``transformer-trip`` on ``sub-1`` (the whole feeder loses supply), ``feeder-overload`` on
        ``feeder-1`` or ``bus-k`` (loads there and downstream surge by ``factor``; ``severity``, the
        name every twin's faults take, is the same factor)."""
        if severity is not None:
            factor = float(severity)
        if target in self._faults:
            raise InvalidFault(f"{target} already has an active {self._faults[target].kind.value}")
        fault = _Fault(kind=kind, at=self._now)
        if kind is FaultKind.LINE_FAULT:
            asset_index(target, "line")
        elif kind is FaultKind.TRANSFORMER_TRIP:
            if target != SUBSTATION_ID:
                raise InvalidFault(f"a transformer trip targets {SUBSTATION_ID}, not {target!r}")
            self._net.ext_grid["in_service"] = False
        elif kind is FaultKind.FEEDER_OVERLOAD:
            if not 1.0 < factor <= 5.0:
                raise InvalidFault(f"an overload surge factor must be in (1, 5], not {factor}")
            buses = set(range(len(self._net.bus))) if target == FEEDER_ID else downstream_of(asset_index(target, "bus"))
            fault.loads = [i for i, b in enumerate(self._net.load.bus) if int(b) in buses]
            fault.factor = factor
            self._surge[fault.loads] *= factor
        else:
            raise InvalidFault(f"{kind.value} is not an electricity fault: use line-fault, transformer-trip or feeder-overload")
        self._faults[target] = fault
        event = self._log("fault", target, kind.value + (f" x{factor}" if fault.loads else ""))
        self._refresh()
        return event

    def clear_fault(self, target: str, *, reclose: bool = True) -> tuple[TwinEvent, ...]:
        """Repair ``target``. With ``reclose`` the switches its protection opened close again (a
        stand-alone repair); a controller that re-routed around the fault passes ``reclose=False``
        and reintegrates by command."""
        fault = self._faults.pop(target, None)
        if fault is None:
            raise InvalidFault(f"{target!r} has no active fault to clear (active: {sorted(self._faults) or 'none'})")
        before = len(self._events)
        self._log("repaired", target, fault.kind.value)
        if fault.kind is FaultKind.TRANSFORMER_TRIP:
            self._net.ext_grid["in_service"] = True
        elif fault.kind is FaultKind.FEEDER_OVERLOAD:
            self._surge[fault.loads] /= fault.factor
        if reclose:
            for s in fault.tripped:
                if not self._net.switch.closed.at[s]:
                    self._net.switch.at[s, "closed"] = True
                    self._log("switched", switch_id(s), "close (reclose after repair)")
        self._refresh()
        return tuple(self._events[before:])

    # --- attacks -----------------------------------------------------------------------------------

    def inject_attack(
        self,
        kind: AttackKind,
        sensor_id: str,
        *,
        magnitude: float | None = None,
        rate_per_hour: float | None = None,
        window: int | None = None,
        action: str | None = None,
        value: float | None = None,
    ) -> Attack:
        """Falsify ``sensor_id`` (bias: ``magnitude``; drift: ``rate_per_hour``; replay: last
        ``window`` samples; frozen). A spoofed command carries out ``action`` (and ``value``) on the
        sensor's asset behind the operator's back and freezes that sensor so the change stays hidden."""
        shown = {r.sensor_id: r.value for r in self.readings()}  # what the operator sees now
        if sensor_id not in shown:
            raise InvalidAttack(f"no sensor {sensor_id!r} in the electricity twin (e.g. bus-18/voltage_pu)")
        if kind is AttackKind.SPOOFED_COMMAND:
            if action is None:
                raise InvalidAttack("a spoofed-command attack needs action= (open, close, shed or restore)")
            self._execute(sensor_id.split("/")[0], action, value, origin="spoofed")
            attack = self._attacks.freeze(sensor_id, at=self._now, kind=kind, value=shown[sensor_id])
        elif kind is AttackKind.FROZEN:  # what the sensor shows now, not at the last step
            attack = self._attacks.freeze(sensor_id, at=self._now, value=shown[sensor_id])
        else:
            attack = self._attacks.inject(
                kind, sensor_id, at=self._now, magnitude=magnitude, rate_per_hour=rate_per_hour, window=window
            )
        self._log("attack", sensor_id, kind.value)
        return attack

    def clear_attack(self, sensor_id: str) -> None:
        """Stop falsifying ``sensor_id`` (a spoofed command's physical effect stays until undone)."""
        self._attacks.clear(sensor_id)
        self._log("attack-cleared", sensor_id)

    # --- internals -----------------------------------------------------------------------------------

    def _set_time(self, t: datetime) -> None:
        self._now = t
        self._mult = load_multipliers(t, seed=self._seed, noise=self._noise, count=len(self._nominal_p))

    def _demand(self) -> NDArray[np.float64]:
        """Unshed demand per load row, kW."""
        out: NDArray[np.float64] = self._nominal_p * self._mult * self._surge * 1000.0
        return out

    def _write_loads(self) -> None:
        scale = self._mult * self._surge * (1.0 - self._shed)
        self._net.load["p_mw"] = self._nominal_p * scale
        self._net.load["q_mvar"] = self._nominal_q * scale

    def _faulted_lines(self) -> set[int]:
        return {asset_index(t, "line") for t, f in self._faults.items() if f.kind is FaultKind.LINE_FAULT}

    def _load_row(self, load: str) -> int:
        bus = asset_index(load, "load")
        return int(np.flatnonzero(self._net.load.bus.to_numpy() == bus)[0])

    def _refresh(self) -> None:
        """Protection acts, then the power flow runs; a diverging flow is a voltage collapse, which
        the feeder-head breaker's undervoltage protection clears by tripping sw-1."""
        self._write_loads()
        for s, k in _flow.protection_trips(self._net, self._faulted_lines()):
            self._trip(s, f"protection: faulted {line_id(k)} energised", cause=line_id(k))
        snap = _flow.solve(self._net)
        if not snap.converged:
            surges = [t for t, f in self._faults.items() if f.kind is FaultKind.FEEDER_OVERLOAD]
            self._trip(0, "undervoltage: power flow diverged (voltage collapse)", cause=next(iter(surges), None))
            snap = _flow.solve(self._net)
        self._snap = snap
        self._true = sensor_readings(self._net, snap, at=self._now, demand_kw=self._demand())

    def _trip(self, s: int, why: str, *, cause: str | None) -> None:
        """Protection opened switch ``s``; the fault that caused it remembers it for reclosing."""
        self._net.switch.at[s, "closed"] = False
        if cause in self._faults:
            self._faults[cause].tripped.append(s)
        self._log("trip", switch_id(s), why)

    def _log(self, kind: str, asset: str, detail: str = "") -> TwinEvent:
        event = TwinEvent(at=self._now, kind=kind, asset_id=asset, detail=detail)
        self._events.append(event)
        return event


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise TwinError(f"twin time must be timezone-aware (got naive {t.isoformat()})")
    return t


def _fraction(load: str, value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise InvalidCommand(f"shed fraction for {load} must be in (0, 1], not {value}")
    return float(value)
