"""The sewage twin: real SWMM hydraulics (pyswmm) on a simulated clock, faults, attacks, actuators.

Stepping. One pyswmm ``Simulation`` stays open for the twin's life and is advanced with
``step_advance`` strides: :meth:`SewageTwin.advance` moves the clock in strides of at most
:data:`~.station.PLC_PERIOD_S`, letting the lift station's PLC act between them. Re-running from
t = 0 each step would cost O(t) per step; stepping the open engine costs only the new period.

One twin per process. SWMM keeps its state in C globals, so pyswmm allows a single open
``Simulation`` per process. The twin owns it from construction until :meth:`close` (or the end of
a ``with`` block, or garbage collection); opening a second twin while one is open raises
:class:`SewageEngineBusy` with that explanation rather than pyswmm's bare ``MultiSimulationError``.
A scenario needing a baseline runs it first and closes it (or runs it in another process).
SWMM's report and binary output go to a private temporary directory, removed on close.

Faults change the physics: PUMP_FAILURE holds a pump (or, on ``station:PS1``, both: the station's
power is gone) off whatever the PLC or operator says; BLOCKAGE caps a conduit's flow (SWMM's
link flow limit) at a fraction of its full-bore capacity. OVERFLOW is what rain plus a failure
*cause*, measured at the CSO outfall; injected, it is the dry-weather overflow's field cause, the
interceptor below the weir blocked. Attacks only falsify what the sensors
report (``sectors._twin.MeasurementAttacks``), except a spoofed command, which really moves an
actuator while its status sensor is frozen to hide it. :attr:`events` keeps the ground truth.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self, cast

from pyswmm import Links, Nodes, RainGages, Simulation
from pyswmm.simulation import _sim_state_instance

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

from .network import (
    CONDUITS,
    CSO_OUTFALL,
    DIVERSION,
    INP_FILE,
    JUNCTIONS,
    PLANT_OUTFALL,
    RAIN_GAUGE,
    STATION,
    STORM_TANK,
    WET_WELL,
    AssetKind,
    asset_id,
    parse_asset_id,
)
from .sensors import SensorSpec, build_sensors, full_flow_m3s, sample
from .station import PLC_PERIOD_S, PumpStation

__all__ = ["BELOW_WEIR", "DEFAULT_START", "ROUTING_STEP_S", "SewageEngineBusy", "SewageTwin", "SewerService"]

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
ROUTING_STEP_S = 5
"""SWMM's fixed routing step in ``network.inp``; the clock moves in multiples of it."""
BELOW_WEIR = ("C4",)
"""The interceptor between the CSO chamber J4 and the wet well: blocked, the weir spills in dry weather."""
DEFAULT_BLOCKAGE = 0.9
"""Default blockage severity: the conduit keeps 10 % of its full-bore capacity (a root mass, fat)."""
_ACTIONS = {AssetKind.PUMP: ("start", "stop", "auto"), AssetKind.ORIFICE: ("open", "close", "set")}


class SewageEngineBusy(TwinError):
    """Another SWMM simulation is open in this process (SWMM allows one); close it first."""


@dataclass(frozen=True)
class SewerService:
    """How well the sewer serves the city now. Volumes are cumulative since the twin started.

    ``overflow_m3``: untreated sewage spilled to the river at the CSO; ``flooding_m3``: lost from
    surcharged manholes or the wet well onto streets; ``flooded_nodes``: nodes flooding right now.
    """

    at: datetime
    overflow_m3: float
    overflow_m3s: float
    flooding_m3: float
    flooded_nodes: tuple[str, ...]
    treated_m3: float
    wet_well_level_m: float
    pumps_running: tuple[str, ...]

    @property
    def spilling(self) -> bool:
        return self.overflow_m3s > 0.0 or bool(self.flooded_nodes)


class SewageTwin:
    """A combined sewer with a lift station that can be stepped, rained on, broken, attacked, commanded.

    ``start`` is the wall-clock time of simulated t = 0; ``duration_days`` bounds the run (SWMM
    needs an end date). Use it as a context manager, or call :meth:`close`.
    """

    sector = Sector.SEWAGE

    def __init__(self, *, start: datetime = DEFAULT_START, duration_days: int = 30) -> None:
        if _sim_state_instance.sim_is_instantiated:
            raise SewageEngineBusy(
                "a SWMM simulation is already open in this process (SWMM allows one): "
                "close the other SewageTwin first, or run this one in another process"
            )
        if duration_days < 1:
            raise ValueError(f"duration_days must be at least 1, got {duration_days}")
        self.start = start
        self._workdir = Path(tempfile.mkdtemp(prefix="qeaims-swmm-"))
        sim = Simulation(str(INP_FILE), str(self._workdir / "run.rpt"), str(self._workdir / "run.out"))
        self._sim: Any = sim.__enter__()  # entered: pyswmm warns about un-managed simulations
        self._finalizer = weakref.finalize(self, _shutdown, sim, self._workdir)
        try:
            self._sim.end_time = self._sim.start_time + timedelta(days=duration_days)
            self._sim.start()
        except BaseException:
            self.close()
            raise
        self._nodes: Any = Nodes(self._sim)
        self._links: Any = Links(self._sim)
        self._gauge: Any = RainGages(self._sim)[RAIN_GAUGE]
        self.station = PumpStation()
        self.sensors: tuple[SensorSpec, ...] = build_sensors()
        self._sensor_ids = {s.sensor_id for s in self.sensors}
        self.attacks = MeasurementAttacks()
        self.events: list[TwinEvent] = []
        self.faults: dict[str, tuple[FaultKind, str]] = {}
        self.rain_mm_h = 0.0
        self.diversion = 0.0
        self._links[DIVERSION].target_setting = 0.0  # the regulator is closed in normal operation
        self._elapsed_s = 0
        self._truth: list[Reading] = []
        self._observe()

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """End the SWMM run and free the process's single engine; idempotent."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- clock ----------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._elapsed_s)

    @property
    def now_s(self) -> int:
        """Simulated seconds since ``start``."""
        return self._elapsed_s

    def advance(self, seconds: float = 300.0) -> list[Reading]:
        """Run the hydraulics ``seconds`` further (a positive multiple of :data:`ROUTING_STEP_S`)
        and return what the sensors now report."""
        if self.closed:
            raise TwinError("this sewage twin is closed; build a new one")
        whole = int(seconds)
        if whole != seconds or whole <= 0 or whole % ROUTING_STEP_S:
            raise ValueError(f"advance by a positive multiple of {ROUTING_STEP_S} s, not {seconds!r}")
        remaining = whole
        while remaining > 0:
            stride = min(PLC_PERIOD_S, remaining)
            for pump, setting in self.station.settings(float(self._nodes[WET_WELL].depth)).items():
                self._links[pump].target_setting = setting
            self._sim.step_advance(stride)
            try:
                next(self._sim)
            except StopIteration:
                raise TwinError(
                    f"the SWMM run ended at {self.now.isoformat()}; raise duration_days"
                ) from None
            remaining -= stride
            self._elapsed_s += stride
        self._observe()
        return self.readings()

    def step(self, t: datetime) -> list[Reading]:
        """Advance the clock to ``t`` (on the routing-step grid; never backwards)."""
        seconds = (t - self.now).total_seconds()
        if seconds <= 0:
            raise TwinError(
                f"the twin's clock is at {self.now.isoformat()}; it cannot step to {t.isoformat()}"
            )
        return self.advance(seconds)

    def set_rain(self, mm_per_h: float) -> None:
        """The rain intensity on the catchment from now on (weather, not an actuator)."""
        if not 0.0 <= mm_per_h <= 300.0:
            raise ValueError(f"rain intensity must be 0..300 mm/h, got {mm_per_h}")
        self._gauge.total_precip = float(mm_per_h)
        self.rain_mm_h = float(mm_per_h)
        self.events.append(TwinEvent(self.now, "weather:rain", f"raingage:{RAIN_GAUGE}", f"{mm_per_h} mm/h"))

    # -- sensors and service --------------------------------------------------------------------
    def _observe(self) -> None:
        powered = asset_id(AssetKind.STATION, STATION) not in self.faults
        self._truth = [sample(spec, self._nodes, self._links, self._gauge, self.now, powered=powered)
                       for spec in self.sensors]
        self.attacks.record(self._truth)

    def readings(self) -> list[Reading]:
        """What the sensors report now: the truth, falsified where an attack is active."""
        return self.attacks.apply(self._truth)

    def true_readings(self) -> list[Reading]:
        """The physics as it is (for scoring detectors, never for the oracles)."""
        return list(self._truth)

    def sensor_ids(self) -> list[str]:
        return [s.sensor_id for s in self.sensors]

    def service(self) -> SewerService:
        """Overflow and flooding so far, what is flooding now, and the station's state."""
        nodes = (*JUNCTIONS, WET_WELL, STORM_TANK)
        flooding = sum(float(self._nodes[n].statistics["flooding_volume"]) for n in nodes)
        return SewerService(
            at=self.now,
            overflow_m3=float(self._nodes[CSO_OUTFALL].cumulative_inflow),
            overflow_m3s=max(0.0, float(self._nodes[CSO_OUTFALL].total_inflow)),
            flooding_m3=flooding,
            flooded_nodes=tuple(n for n in nodes if float(self._nodes[n].flooding) > 1e-6),
            treated_m3=float(self._nodes[PLANT_OUTFALL].cumulative_inflow),
            wet_well_level_m=float(self._nodes[WET_WELL].depth),
            pumps_running=tuple(p for p, run in self.station.running.items() if run),
        )

    # -- faults ---------------------------------------------------------------------------------
    def inject_fault(self, kind: FaultKind, target: str, *, severity: float | None = None) -> TwinEvent:
        """Break the physics at ``target`` from the next stride on.

        * PUMP_FAILURE on ``pump:P1``/``pump:P2`` (that pump) or ``station:PS1`` (both: power lost).
        * BLOCKAGE on ``conduit:X``: ``severity`` in (0, 1] is the share of full-bore capacity lost
          (default :data:`DEFAULT_BLOCKAGE`); 1 closes the conduit.
        * OVERFLOW on the interceptor below the CSO weir (:data:`BELOW_WEIR`) or on ``outfall:CSO``: the
          dry-weather overflow's cause in the field, that interceptor blocked (default: closed), so the
          weir spills with no rain (the controller's planner breaks its model so for a verdict on the
          outfall). Elsewhere an overflow is what rain plus a failure cause, and is not injected.
        """
        element, name = parse_asset_id(target)
        if target in self.faults:
            raise InvalidFault(f"{target} already has a {self.faults[target][0].value} fault; clear it first")
        if kind is FaultKind.PUMP_FAILURE:
            if element not in (AssetKind.PUMP, AssetKind.STATION):
                raise InvalidFault(f"pump-failure needs pump:P1, pump:P2 or station:PS1, not {target}")
            pumps = tuple(self.station.running) if element is AssetKind.STATION else (name,)
            self.station.failed.update(pumps)
            detail = f"held off: {', '.join(pumps)}"
        elif kind is FaultKind.BLOCKAGE:
            if element is not AssetKind.CONDUIT:
                raise InvalidFault(
                    f"blockage needs a conduit:NAME target ({', '.join(CONDUITS)}), not {target}"
                )
            share = DEFAULT_BLOCKAGE if severity is None else float(severity)
            if not 0.0 < share <= 1.0:
                raise InvalidFault(f"blockage severity is the capacity share lost, in (0, 1]; got {share}")
            limit = max((1.0 - share) * full_flow_m3s(name), 1e-6)  # 0 would mean "no limit" to SWMM
            self._links[name].flow_limit = limit
            detail = f"flow capped at {limit:.4f} m3/s"
        elif kind is FaultKind.OVERFLOW and (element is AssetKind.CONDUIT and name in BELOW_WEIR
                                             or target == asset_id(AssetKind.OUTFALL, CSO_OUTFALL)):
            # a dry-weather overflow as it happens in the field: the interceptor below the CSO weir
            # blocked (fat, roots, debris), so the chamber fills and the weir spills sanitary sewage;
            # on the outfall (what a verdict names when no blockage shows), the same physics
            name = name if element is AssetKind.CONDUIT else BELOW_WEIR[0]
            share = 1.0 if severity is None else float(severity)
            if not 0.0 < share <= 1.0:
                raise InvalidFault(f"overflow severity is the interceptor's capacity share lost, in (0, 1]; got {share}")
            limit = max((1.0 - share) * full_flow_m3s(name), 1e-6)
            self._links[name].flow_limit = limit
            detail = f"dry-weather overflow: interceptor {name} below the weir capped at {limit:.4f} m3/s"
        elif kind is FaultKind.OVERFLOW:
            raise InvalidFault(
                "overflow is not injected: it follows from rain plus a failure (see service()), or in dry "
                f"weather from a blockage below the weir (conduit:{', conduit:'.join(BELOW_WEIR)})"
            )
        else:
            raise InvalidFault(f"{kind.value} is not a sewage fault (pump-failure or blockage)")
        self.faults[target] = (kind, name)
        return self._log(f"fault:{kind.value}", target, detail)

    def clear_fault(self, target: str) -> TwinEvent:
        """Repair ``target``: the pumps may run again (their modes decide), the conduit flows freely."""
        try:
            kind, name = self.faults.pop(target)
        except KeyError:
            raise InvalidFault(f"{target} has no active fault to clear") from None
        if kind in (FaultKind.BLOCKAGE, FaultKind.OVERFLOW):
            self._links[name].flow_limit = 0.0
        else:
            still = {
                p for t, (k, n) in self.faults.items() if k is FaultKind.PUMP_FAILURE for p in _pumps(t, n)
            }
            self.station.failed = still
        return self._log(f"repaired:{kind.value}", target)

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
        """Falsify ``sensor_id`` (bias, drift, replay, frozen), or for SPOOFED_COMMAND carry out the
        forged ``command`` and freeze ``sensor_id`` (normally the actuator's status sensor)."""
        if sensor_id not in self._sensor_ids:
            raise UnknownAsset(f"no sewage sensor {sensor_id!r} (ids look like storage:WW/level_m)")
        start_attack(self.attacks, self.apply, kind, sensor_id, now=self.now, magnitude=magnitude,
                     rate_per_hour=rate_per_hour, window=window, command=command)
        self._log(f"attack:{kind.value}", sensor_id.split("/")[0], sensor_id)

    def clear_attack(self, sensor_id: str) -> None:
        """The sensor reports the truth again (a spoofed command's effect stays until commanded back)."""
        attack = self.attacks.clear(sensor_id)
        self._log(f"attack-cleared:{attack.kind.value}", sensor_id.split("/")[0])

    # -- actuators ------------------------------------------------------------------------------
    def actuators(self) -> dict[str, tuple[str, ...]]:
        """Actuator id -> valid actions: pump drives and the diversion gate."""
        return {
            self.actuator_id("pump:P1"): _ACTIONS[AssetKind.PUMP],
            self.actuator_id("pump:P2"): _ACTIONS[AssetKind.PUMP],
            self.actuator_id(f"orifice:{DIVERSION}"): _ACTIONS[AssetKind.ORIFICE],
        }

    def actuator_id(self, target: str) -> str:
        """``pump:P1/drive`` for pumps, ``orifice:OR1/gate`` for the diversion regulator."""
        element, _ = parse_asset_id(target)
        if element not in _ACTIONS:
            raise UnknownAsset(f"{target} has no actuator (actuated: pump:P1, pump:P2, orifice:{DIVERSION})")
        return f"{target}/{'drive' if element is AssetKind.PUMP else 'gate'}"

    def command(
        self, target: str, action: str, value: float | None = None, decision_ref: str = ""
    ) -> ActuatorCommand:
        """A well-formed command for ``target`` (the controller's way to build one)."""
        return ActuatorCommand(
            sector=Sector.SEWAGE,
            asset_id=target,
            actuator_id=self.actuator_id(target),
            action=action,
            value=value,
            decision_ref=decision_ref,
        )

    def apply(self, cmd: ActuatorCommand) -> TwinEvent:
        """Carry out ``cmd`` from the next stride on. Pumps: start/stop (manual) or auto (PLC);
        a failed pump accepts the mode but stays off. Gate: open, close, or set ``value`` in [0, 1]."""
        if cmd.sector is not Sector.SEWAGE:
            raise InvalidCommand(f"the sewage twin takes sewage commands, not {cmd.sector.value}")
        expected = self.actuator_id(cmd.asset_id)
        if cmd.actuator_id != expected:
            raise InvalidCommand(f"actuator {cmd.actuator_id!r} is not on {cmd.asset_id}; use {expected!r}")
        element, name = parse_asset_id(cmd.asset_id)
        if cmd.action not in _ACTIONS[element]:
            raise InvalidCommand(
                f"{cmd.asset_id} cannot {cmd.action!r}; valid: {', '.join(_ACTIONS[element])}"
            )
        if element is AssetKind.PUMP:
            self.station.mode[name] = cast("Any", {"start": "on", "stop": "off", "auto": "auto"}[cmd.action])
        else:
            opening = {"open": 1.0, "close": 0.0}.get(cmd.action, cmd.value)
            if opening is None or not 0.0 <= opening <= 1.0:
                raise InvalidCommand(
                    f"set on {cmd.asset_id} needs a value in [0, 1] (gate opening), got {cmd.value}"
                )
            self._links[name].target_setting = float(opening)
            self.diversion = float(opening)
        detail = cmd.action if cmd.value is None else f"{cmd.action}={cmd.value}"
        return self._log("command", cmd.asset_id, f"{detail} {cmd.decision_ref}".strip())

    def _log(self, kind: str, asset: str, detail: str = "") -> TwinEvent:
        event = TwinEvent(self.now, kind, asset, detail)
        self.events.append(event)
        return event


def _pumps(target: str, name: str) -> tuple[str, ...]:
    return tuple(PumpStation().running) if target.startswith("station:") else (name,)


def _shutdown(sim: Any, workdir: Path) -> None:
    """Close the SWMM run (ends it, frees the global engine) and drop its report files."""
    try:
        sim.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
