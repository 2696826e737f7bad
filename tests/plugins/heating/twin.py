"""A district-heating loop: one plant, a duty and a standby circulation pump, three substations.

Physics, kept small but real:

- Each substation's heat demand follows the hour of day (a morning and an evening peak) and the
  outdoor temperature, with a little noise: ``Q_i = base_i · (1 + 0.35·profile(h)) · (1 + noise)``.
- Its control valve draws the mass flow that delivers ``Q_i`` at its design cooling ΔT:
  ``m_i = Q_i / (c_p · ΔT_i)``; the pump must carry ``Σ m_i``.
- The running pump's differential pressure follows its curve ``Δp = Δp₀ − k·m²`` and its shaft
  power is ``m·Δp/(ρ·η)``; a stopped pump reads zero flow, zero Δp and zero power.
- Supply water cools on its way out: at a substation ``T = T_g + (T_s − T_g)·exp(−UA_i/(m_i·c_p))``.
  With no pump running there is no flow: no heat is delivered and the substations cool towards the
  ground temperature.

Faults: ``pump-failure`` on ``pump:P1`` or ``pump:P2`` (the pump stops and cannot be started until
repaired). Actuators: ``pump:P1/run`` and ``pump:P2/run`` (``start``/``stop``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from core.messages import ActuatorCommand, FaultKind, Reading, Sector
from sectors._twin import InvalidCommand, InvalidFault, TwinError, TwinEvent, UnknownAsset

__all__ = ["DEFAULT_START", "HeatingTwin"]

DEFAULT_START = datetime(2026, 1, 12, tzinfo=UTC)
CP = 4.19  # kJ/(kg·K)
RHO = 975.0  # kg/m³ at ~75 °C
SUPPLY_C = 85.0
GROUND_C = 8.0
DP0_BAR, K_BAR = 4.0, 0.00008  # pump curve: Δp = Δp₀ − k·m² (m in kg/s)
ETA = 0.7
PUMPS = ("pump:P1", "pump:P2")


@dataclass(frozen=True)
class Substation:
    asset: str
    base_kw: float
    delta_t: float  # design cooling at the substation, K
    ua_kw_k: float  # pipe heat-loss conductance from the plant to it, kW/K


SUBSTATIONS = (Substation("sub:S1", 2400.0, 35.0, 2.0), Substation("sub:S2", 1600.0, 32.0, 3.0),
               Substation("sub:S3", 900.0, 30.0, 4.5))


def _profile(hour: float) -> float:
    """Demand shape over a day: peaks at 07:00 and 19:00, lowest at night."""
    return 0.6 * math.exp(-((hour - 7.0) ** 2) / 4.0) + 0.5 * math.exp(-((hour - 19.0) ** 2) / 6.0) - 0.2


class HeatingTwin:
    """``advance`` the clock, read ``readings()``, act with ``apply``, break it with ``inject_fault``."""

    def __init__(self, *, seed: int = 0, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise TwinError("start must be timezone-aware (UTC)")
        self.start = start
        self._rng = np.random.default_rng([seed, 0x4EA7])
        self._now_s = 0.0
        self._running = {"pump:P1": True, "pump:P2": False}
        self._failed: dict[str, FaultKind] = {}
        self._events: list[TwinEvent] = []
        self._readings = self._evaluate()

    @property
    def sector(self) -> Sector:
        return Sector("heating")

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._now_s)

    @property
    def events(self) -> tuple[TwinEvent, ...]:
        return tuple(self._events)

    @property
    def assets(self) -> tuple[str, ...]:
        return ("plant:H1", *PUMPS, *(s.asset for s in SUBSTATIONS))

    def advance(self, seconds: float = 300.0) -> list[Reading]:
        if seconds <= 0:
            raise TwinError(f"the clock only moves forward, got {seconds} s")
        self._now_s += seconds
        self._readings = self._evaluate()
        return list(self._readings)

    def readings(self) -> list[Reading]:
        return list(self._readings)

    def inject_fault(self, kind: FaultKind, target: str, *, severity: float | None = None) -> TwinEvent:
        if kind is not FaultKind.PUMP_FAILURE or target not in PUMPS:
            raise InvalidFault(f"the heating twin takes pump-failure on {' or '.join(PUMPS)}, not {kind.value} "
                               f"on {target!r}")
        self._failed[target] = kind
        self._running[target] = False
        self._readings = self._evaluate()
        return self._log("fault", target, f"{kind.value}")

    def clear_fault(self, target: str) -> tuple[TwinEvent, ...]:
        if self._failed.pop(target, None) is None:
            return ()
        return (self._log("repaired", target, "repaired (stopped until started)"),)

    def actuators(self) -> dict[str, tuple[str, ...]]:
        return {f"{p}/run": ("start", "stop") for p in PUMPS}

    def apply(self, command: ActuatorCommand) -> tuple[TwinEvent, ...]:
        if command.sector != self.sector:
            raise InvalidCommand(f"{command.sector.value} command sent to the heating twin")
        if command.actuator_id not in self.actuators():
            raise UnknownAsset(f"no heating actuator {command.actuator_id!r}; actuators: {', '.join(self.actuators())}")
        pump = command.actuator_id.split("/")[0]
        if command.action not in ("start", "stop"):
            raise InvalidCommand(f"{command.actuator_id} accepts start, stop, not {command.action!r}")
        if command.action == "start" and pump in self._failed:
            raise InvalidCommand(f"{pump} has failed and cannot start until repaired")
        self._running[pump] = command.action == "start"
        self._readings = self._evaluate()
        return (self._log("pump", pump, command.action),)

    def service(self) -> tuple[float, float]:
        """(heat delivered, heat demanded) in kW, now."""
        delivered = sum(r.value for r in self._readings if r.quantity == "heat_kw")
        return delivered, sum(self._demand(s) for s in SUBSTATIONS)

    # --- physics -------------------------------------------------------------------------------
    def _demand(self, sub: Substation) -> float:
        hour = (self.now.hour + self.now.minute / 60.0) % 24.0
        return sub.base_kw * (1.0 + 0.35 * _profile(hour))

    def _evaluate(self) -> list[Reading]:
        pumping = [p for p in PUMPS if self._running[p] and p not in self._failed]
        values: dict[tuple[str, str], tuple[float, str]] = {}
        total_flow = 0.0
        return_heat = 0.0
        for sub in SUBSTATIONS:
            demand = self._demand(sub) * (1.0 + 0.01 * float(self._rng.normal()))
            if pumping:
                flow = demand / (CP * sub.delta_t)
                temp = GROUND_C + (SUPPLY_C - GROUND_C) * math.exp(-sub.ua_kw_k / (flow * CP))
                heat = flow * CP * sub.delta_t
            else:
                flow, heat = 0.0, 0.0
                temp = GROUND_C + (SUPPLY_C - GROUND_C) * 0.35  # standing water cools towards the ground
            total_flow += flow
            return_heat += flow * (temp - sub.delta_t)
            values[(sub.asset, "flow_kgs")] = (flow, "kg/s")
            values[(sub.asset, "heat_kw")] = (heat, "kW")
            values[(sub.asset, "supply_temp_c")] = (temp, "degC")
        return_c = return_heat / total_flow if total_flow > 0 else GROUND_C + (SUPPLY_C - GROUND_C) * 0.3
        for pump in PUMPS:
            flow = total_flow if pump in pumping[:1] else 0.0
            dp = max(DP0_BAR - K_BAR * flow ** 2, 0.0) if flow > 0 else 0.0
            power = flow / RHO * dp * 100.0 / ETA  # kW: (m³/s)·(bar → kPa)/η
            values[(pump, "flow_kgs")] = (flow, "kg/s")
            values[(pump, "dp_bar")] = (dp, "bar")
            values[(pump, "power_kw")] = (power, "kW")
        values[("plant:H1", "supply_temp_c")] = (SUPPLY_C + 0.2 * float(self._rng.normal()), "degC")
        values[("plant:H1", "return_temp_c")] = (return_c, "degC")
        return [Reading(sector=self.sector, asset_id=asset, sensor_id=f"{asset}/{quantity}", quantity=quantity,
                        unit=unit, value=round(value, 4), timestamp=self.now)
                for (asset, quantity), (value, unit) in values.items()]

    def _log(self, kind: str, asset: str, detail: str) -> TwinEvent:
        event = TwinEvent(self.now, kind, asset, detail)
        self._events.append(event)
        return event
