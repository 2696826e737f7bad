"""The banking twin: a payment switch, a primary and a standby data centre, and ATM clusters.

The clock advances in slices of at most 60 s; each slice is evaluated with the analytic model of
:mod:`sectors.banking._model` at its end time and its transactions are counted into the service
totals, so a day stepped minute by minute or in one call gives the same figures.

Asset ids are the on-chain ones (``switch-1``, ``dc-primary``, ``dc-standby``, ``atm-cluster-1``)
plus finer ones (``atm-cluster-2``). Actuators: ``switch-1/route`` (failover, failback),
``switch-1/ratelimit`` (limit = value tps per source, clear), ``<cluster>/mode`` (drain, restore).

A fraud-like burst is not a :class:`FaultKind` (the shared enum has no member for it), so it has
its own pair :meth:`BankingTwin.inject_burst` / :meth:`BankingTwin.clear_burst`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from core.messages import ActuatorCommand, AttackKind, FaultKind, Reading, Sector
from sectors._twin import (
    Attack,
    InvalidAttack,
    InvalidCommand,
    InvalidFault,
    MeasurementAttacks,
    TwinError,
    TwinEvent,
    UnknownAsset,
)

from ._flow import BankingServiceReport, Slice, evaluate
from ._model import DEV_BANKING, BankingSpec

__all__ = ["DEFAULT_START", "BankingTwin"]

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
_SLICE_S = 60.0
_DC_FAULTS = (FaultKind.OUTAGE, FaultKind.EQUIPMENT_FAILURE, FaultKind.POWER_LOSS)


@dataclass
class _State:
    """Everything the faults and actuators change; :func:`evaluate` reads it."""

    down: set[str] = field(default_factory=set)
    power_lost: dict[str, float] = field(default_factory=dict)
    drained: set[str] = field(default_factory=set)
    degraded: dict[str, float] = field(default_factory=dict)
    active_standby: bool = False
    failover_until: float = -1.0
    burst_tps: float = 0.0
    burst_sources: int = 0
    rate_limit: float | None = None


class BankingTwin:
    """The payment network: ``step``/``advance`` the clock, read ``readings()``, act with ``apply``."""

    sector = Sector.BANKING

    def __init__(
        self, spec: BankingSpec = DEV_BANKING, *, seed: int = 0, start: datetime = DEFAULT_START, history: int = 1440
    ) -> None:
        if start.tzinfo is None:
            raise TwinError("start must be timezone-aware (UTC)")
        self.spec, self.start, self._seed = spec, start, seed
        self._now_s = 0.0
        self._state = _State()
        self._faults: dict[str, FaultKind] = {}
        self._events: list[TwinEvent] = []
        self._attacks = MeasurementAttacks(history=history)
        self._totals = {"offered": 0.0, "served": 0.0, "failed": 0.0, "declined": 0.0, "throttled": 0.0}
        self._slice = self._evaluate()
        self._attacks.record(self._slice.readings)

    # --- clock and sensors -------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._now_s)

    @property
    def events(self) -> tuple[TwinEvent, ...]:
        return tuple(self._events)

    @property
    def faults(self) -> dict[str, FaultKind]:
        return dict(self._faults)

    @property
    def attacks(self) -> dict[str, Attack]:
        return self._attacks.active

    @property
    def assets(self) -> tuple[str, ...]:
        s = self.spec
        return (s.switch_id, s.primary.dc_id, s.standby.dc_id, *(c.cluster_id for c in s.atm_clusters))

    def step(self, t: datetime) -> list[Reading]:
        """Advance to ``t`` in slices of at most 60 s; returns what the sensors report at ``t``."""
        if t.tzinfo is None:
            raise TwinError("step needs a timezone-aware datetime")
        until = (t - self.start).total_seconds()
        if until < self._now_s:
            raise TwinError(f"the twin's clock is at {self.now.isoformat()}; it cannot step back to {t.isoformat()}")
        while self._now_s < until:
            dt = min(_SLICE_S - self._now_s % _SLICE_S, until - self._now_s)
            self._now_s += dt
            before = self._slice
            self._slice = self._evaluate()
            self._count(dt)
            self._log_transitions(before)
        self._attacks.record(self._slice.readings)
        return self.readings()

    def advance(self, seconds: float = 60.0) -> list[Reading]:
        if not np.isfinite(seconds) or seconds < 0:
            raise TwinError(f"advance needs a finite, non-negative number of seconds, not {seconds}")
        return self.step(self.now + timedelta(seconds=seconds))

    def readings(self) -> list[Reading]:
        return self._attacks.apply(self._slice.readings)

    def true_readings(self) -> list[Reading]:
        return list(self._slice.readings)

    def sensor_ids(self) -> list[str]:
        return [r.sensor_id for r in self._slice.readings]

    def service(self) -> BankingServiceReport:
        """Availability (legitimate transactions served / offered) now and since the start."""
        t = self._totals
        return BankingServiceReport(
            at=self.now,
            availability_now=self._slice.availability,
            availability=t["served"] / t["offered"] if t["offered"] else 1.0,
            failed_transactions=round(t["failed"]),
            fraud_declined=round(t["declined"]),
            throttled=round(t["throttled"]),
            active_dc=self.spec.standby.dc_id if self._state.active_standby else self.spec.primary.dc_id,
            dc_status=dict(self._slice.dc_status),
        )

    # --- faults ------------------------------------------------------------------------------
    def inject_fault(self, kind: FaultKind, target: str, *, severity: float | None = None) -> TwinEvent:
        """OUTAGE / EQUIPMENT_FAILURE on a DC or ATM cluster: down now. POWER_LOSS there: on UPS
        for its minutes, then down. DEGRADATION on the switch or a cluster: network loss and
        latency in proportion to ``severity`` (0, 1], default 0.5. FRAUD_BURST on the switch:
        :meth:`inject_burst` of ``severity`` extra transactions a second (default 300)."""
        self._asset(target)
        if target in self._faults:
            raise InvalidFault(f"{target} already has an active {self._faults[target].value}; clear it first")
        if kind is FaultKind.FRAUD_BURST:
            if target != self.spec.switch_id:
                raise InvalidFault(f"a fraud burst floods the switch {self.spec.switch_id}, not {target!r}")
            event = self.inject_burst(300.0 if severity is None else float(severity))
            self._faults[target] = kind
            return event
        detail = kind.value
        if kind in _DC_FAULTS and target != self.spec.switch_id:
            if kind is FaultKind.POWER_LOSS:
                self._state.power_lost[target] = self._now_s
            else:
                self._state.down.add(target)
        elif kind is FaultKind.DEGRADATION and not target.startswith("dc-"):
            level = 0.5 if severity is None else float(severity)
            if not np.isfinite(level) or not 0.0 < level <= 1.0:
                raise InvalidFault(f"degradation severity must be in (0, 1], not {severity}")
            self._state.degraded[target] = level
            detail += f" {level:.2f}"
        else:
            raise InvalidFault(
                f"{kind.value} on {target!r}: use outage, equipment-failure or power-loss on a data centre or "
                "ATM cluster, degradation on the switch or an ATM cluster"
            )
        self._faults[target] = kind
        event = self._log("fault", target, detail)
        self._reevaluate()
        return event

    def clear_fault(self, target: str) -> tuple[TwinEvent, ...]:
        """Repair ``target``; the switch stays on whichever DC it was routed to (fail back by command)."""
        kind = self._faults.pop(target, None)
        if kind is None:
            raise InvalidFault(f"{target!r} has no active fault to clear (active: {sorted(self._faults) or 'none'})")
        if kind is FaultKind.FRAUD_BURST:
            return (self.clear_burst(),)  # the fraud stopped (its sources blocked upstream)
        before = len(self._events)
        self._state.down.discard(target)
        self._state.power_lost.pop(target, None)
        self._state.degraded.pop(target, None)
        self._log("repaired", target, kind.value)
        self._reevaluate()
        return tuple(self._events[before:])

    def inject_burst(self, extra_tps: float = 300.0, sources: int = 5) -> TwinEvent:
        """A fraud-like burst: ``extra_tps`` more transactions from only ``sources`` sources."""
        if not np.isfinite(extra_tps) or extra_tps <= 0 or sources < 1:
            raise InvalidFault(f"a burst needs extra_tps > 0 and sources >= 1, not {extra_tps}, {sources}")
        if self._state.burst_tps:
            raise InvalidFault("a burst is already active; clear it first")
        self._state.burst_tps, self._state.burst_sources = float(extra_tps), int(sources)
        event = self._log("fault", self.spec.switch_id, f"fraud-burst {extra_tps:.0f} tps from {sources} sources")
        self._reevaluate()
        return event

    def clear_burst(self) -> TwinEvent:
        if not self._state.burst_tps:
            raise InvalidFault("no burst is active")
        self._state.burst_tps, self._state.burst_sources = 0.0, 0
        event = self._log("repaired", self.spec.switch_id, "fraud-burst")
        self._reevaluate()
        return event

    # --- actuators ---------------------------------------------------------------------------
    def actuators(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {f"{self.spec.switch_id}/route": ("failover", "failback"), f"{self.spec.switch_id}/ratelimit": ("limit", "clear")}
        out.update({f"{c.cluster_id}/mode": ("drain", "restore") for c in self.spec.atm_clusters})
        return out

    def command(self, actuator_id: str, action: str, value: float | None = None, decision_ref: str = "") -> ActuatorCommand:
        return ActuatorCommand(
            sector=Sector.BANKING, asset_id=actuator_id.split("/")[0], actuator_id=actuator_id,
            action=action, value=value, decision_ref=decision_ref,
        )

    def apply(self, command: ActuatorCommand) -> tuple[TwinEvent, ...]:
        if command.sector is not Sector.BANKING:
            raise InvalidCommand(f"{command.sector.value} command sent to the banking twin")
        before = len(self._events)
        self._execute(command.asset_id, command.actuator_id, command.action, command.value, origin="command")
        return tuple(self._events[before:])

    def _execute(self, asset: str, actuator: str, action: str, value: float | None, *, origin: str) -> None:
        acts = self.actuators()
        if actuator not in acts:
            raise UnknownAsset(f"no banking actuator {actuator!r}; actuators: {', '.join(acts)}")
        if actuator.split("/")[0] != asset:
            raise InvalidCommand(f"actuator {actuator!r} does not belong to {asset!r}")
        if action not in acts[actuator]:
            raise InvalidCommand(f"{actuator} accepts {', '.join(acts[actuator])}, not {action!r}")
        st = self._state
        if action in ("failover", "failback"):
            to_standby = action == "failover"
            target = self.spec.standby.dc_id if to_standby else self.spec.primary.dc_id
            if st.active_standby == to_standby:
                raise InvalidCommand(f"the switch is already routed to {target}")
            if self._slice.dc_status.get(target) == 0:
                raise InvalidCommand(f"cannot route to {target}: it is down")
            st.active_standby, st.failover_until = to_standby, self._now_s + self.spec.failover_s
            self._log("route", asset, f"{action} to {target}, {self.spec.failover_s:.0f} s ({origin})")
        elif action == "limit":
            if value is None or not np.isfinite(value) or value <= 0:
                raise InvalidCommand(f"limit needs value = tps allowed per source (> 0), not {value}")
            st.rate_limit = float(value)
            self._log("ratelimit", asset, f"{value:.1f} tps per source ({origin})")
        elif action == "clear":
            st.rate_limit = None
            self._log("ratelimit", asset, f"cleared ({origin})")
        else:
            (st.drained.add if action == "drain" else st.drained.discard)(asset)
            self._log("atm-mode", asset, f"{action} ({origin})")
        self._reevaluate()

    # --- attacks -----------------------------------------------------------------------------
    def inject_attack(
        self,
        kind: AttackKind,
        sensor_id: str,
        *,
        magnitude: float | None = None,
        rate_per_hour: float | None = None,
        window: int | None = None,
        command: ActuatorCommand | None = None,
    ) -> Attack:
        """Falsify ``sensor_id``; SPOOFED_COMMAND carries out ``command`` and freezes the sensor."""
        shown = {r.sensor_id: r.value for r in self.readings()}
        if sensor_id not in shown:
            raise InvalidAttack(f"no sensor {sensor_id!r} in the banking twin (e.g. switch-1/latency_p95_ms)")
        if kind is AttackKind.SPOOFED_COMMAND:
            if command is None:
                raise InvalidAttack("a spoofed-command attack needs command=ActuatorCommand(...)")
            if command.sector is not Sector.BANKING:
                raise InvalidCommand(f"{command.sector.value} command sent to the banking twin")
            self._execute(command.asset_id, command.actuator_id, command.action, command.value, origin="spoofed")
            attack = self._attacks.freeze(sensor_id, at=self.now, kind=kind, value=shown[sensor_id])
        elif kind is AttackKind.FROZEN:
            attack = self._attacks.freeze(sensor_id, at=self.now, value=shown[sensor_id])
        else:
            attack = self._attacks.inject(
                kind, sensor_id, at=self.now, magnitude=magnitude, rate_per_hour=rate_per_hour, window=window
            )
        self._log("attack", sensor_id, kind.value)
        return attack

    def clear_attack(self, sensor_id: str) -> None:
        self._attacks.clear(sensor_id)
        self._log("attack-cleared", sensor_id)

    # --- internals ---------------------------------------------------------------------------
    def _asset(self, target: str) -> None:
        if target not in self.assets:
            raise UnknownAsset(f"no banking asset {target!r}; assets: {', '.join(self.assets)}")

    def _evaluate(self) -> Slice:
        st = self._state
        minute = int(self._now_s // 60)
        noise = float(np.random.default_rng([self._seed, minute]).normal(0.0, self.spec.noise))
        return evaluate(
            self.spec, self._now_s, self.now, noise=noise, down=st.down, power_lost=st.power_lost,
            drained=st.drained, degraded=st.degraded, active_standby=st.active_standby,
            failing_over=self._now_s < st.failover_until, burst_tps=st.burst_tps,
            burst_sources=st.burst_sources, rate_limit=st.rate_limit,
        )

    def _reevaluate(self) -> None:
        before = self._slice
        self._slice = self._evaluate()
        self._log_transitions(before)

    def _count(self, dt: float) -> None:
        s, t = self._slice, self._totals
        t["offered"] += s.legit_offered_tps * dt
        t["served"] += s.legit_served_tps * dt
        t["failed"] += (s.legit_offered_tps - s.legit_served_tps) * dt
        t["declined"] += s.fraud_declined_tps * dt
        t["throttled"] += s.throttled_tps * dt

    def _log_transitions(self, before: Slice) -> None:
        for asset, status in self._slice.dc_status.items():
            if before.dc_status.get(asset) != status:
                self._log("status", asset, {0: "down", 1: "up", 2: "on UPS", 3: "drained"}[status])
        if before.failing_over and not self._slice.failing_over:
            self._log("route", self.spec.switch_id, "failover complete")

    def _log(self, kind: str, asset: str, detail: str = "") -> TwinEvent:
        event = TwinEvent(self.now, kind, asset, detail)
        self._events.append(event)
        return event
