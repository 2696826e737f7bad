"""The transportation twin: uxsim traffic on a road grid, on a simulated clock; faults, attacks, actuators.

Stepping. One uxsim ``World`` stays open for the twin's life and is advanced with
``exec_simulation(duration_t2=...)`` (exactly that many seconds per call); re-running from t = 0
each step would cost O(t) per step. uxsim preallocates its arrays for the whole run, so the
duration is fixed at construction (``duration_h``).

Baseline. A second World built from the same seed is stepped alongside and never touched: it is
the "same day without the incident", so :meth:`TransportTwin.service` can report travel-time
impact and trips lost against what *would* have happened, not against free flow. It doubles the
cost; ``baseline=False`` drops it (service then compares with free-flow times only).

Faults change the physics. INCIDENT on ``link:A-B`` cuts the link's outflow capacity to
``1 - severity`` of its saturation flow (queue builds, speed drops); severity 1 blocks it, which also closes
its entry so routing avoids it. SIGNAL_OUTAGE on ``node:nRC`` turns a dark signal into an
all-way stop: every approach may go, but the junction passes at most
:data:`ALL_WAY_STOP_VEH_S`; the UTC centre's poll shows the controller dark at once, the police
dispatch once the first driver has called it in (:data:`CAD_DELAY_S`). Actuators:
``link:A-B/barrier`` closes/reopens a link (uxsim treats zero entry capacity as closed and
re-routes), ``node:nRC/controller`` retimes a signal's green split, and diverts traffic from the
junction or lifts the diversion (the centre's junction control: variable message signs and the
navigation feed tell drivers to avoid it, which routing weighs as :data:`DIVERSION_S` more on each
approach). Attacks only falsify readings (``sectors._twin.MeasurementAttacks``), except a spoofed
command, which really acts while its link's flow sensor is frozen. :attr:`events` keeps the truth.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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

from .network import ALL_WAY_STOP_VEH_S, CYCLE_S, DELTAN, SIGNALS, approaches, build_world, parse_asset_id
from .network import completed_trips as _completed
from .network import east_west as _east_west
from .network import free_flow_time as _free_time
from .sensors import SensorSpec, build_sensors, od_times, sample_all

__all__ = ["ALL_WAY_STOP_VEH_S", "CAD_DELAY_S", "DEFAULT_START", "DIVERSION_S", "LANE_BLOCKING", "NAV_WINDOW_S", "STEP_S", "ProbeSpeeds", "TransportService", "TransportTwin"]

DEFAULT_START = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
"""A Monday, 07:00: the morning peak, when a road incident matters."""
STEP_S = 5
"""uxsim's time step (reaction time × platoon size); the clock moves in multiples of it."""
LANE_BLOCKING = 0.5
"""An incident taking this share of a link's capacity or more has a vehicle stopped in the lane (the
streets have one lane a way: traffic only squeezes past), which the link's AID camera alarms on."""
CAD_DELAY_S = 60
"""From a crash (or a signal gone dark) to its record in the police dispatch's CAD: a crash, or a dark
junction, in a morning peak is called in by drivers within the first minute, and the call-taker's
record is the CAD's incident (an assumption, stated: the twin has no callers)."""
DIVERSION_S = 120.0
"""What a diversion from a dark junction adds to each of its approaches in the drivers' route choice
(s). Going round a junction of the grid costs two blocks more, 72 s at the free-flow 50 km/h; an
all-way stop passing 540 veh/h in a peak queues far longer than that, so every trip that has a
detour takes it, and a trip that has none (it starts or ends next to the junction) still goes
through (a diversion is advice on signs and the navigation feed, not a closure)."""
NAV_WINDOW_S = 120
"""The travel-time sensors (a navigation service) route by each link's mean speed over this long."""
DELAY_FACTOR = 1.5
DELAY_ALLOWANCE_S = 60.0
"""A trip counts as delayed past DELAY_FACTOR × its free-flow time plus this (normal signal waits)."""
_ACTIONS = {"link": ("close", "open"), "node": ("set", "divert", "undivert")}
_SPLIT_RANGE = (0.1, 0.9)


def _run_averaging(world: Any, seconds: int) -> dict[str, tuple[float, float]]:
    """Run ``world`` ``seconds`` on, one uxsim step at a time: each link's mean speed (m/s) and density
    (veh/m) over them, as a loop detector averages its spot speeds and occupancy over its period."""
    sums: dict[str, list[float]] = {}
    for _ in range(seconds // STEP_S):
        world.exec_simulation(duration_t2=STEP_S)
        for link in world.LINKS:
            acc = sums.setdefault(link.name, [0.0, 0.0, 0.0])
            acc[0] += float(link.speed)
            acc[1] += float(link.density)
            acc[2] += 1.0
    return {name: (s / n, d / n) for name, (s, d, n) in sums.items()}


@dataclass(frozen=True)
class _Toll:
    """A constant route-choice cost (uxsim's ``Link.congestion_pricing``); a class, not a lambda, so a
    twin copied for a trial or saved still carries it."""

    seconds: float

    def __call__(self, t: float) -> float:
        return self.seconds


@dataclass
class ProbeSpeeds:
    """Each link's mean speed over the last :data:`NAV_WINDOW_S`, as a navigation service's probes see it.

    Routing by each link's speed *now* read a platoon stopped at a red light as a blocked street: the
    quickest route jumped to a detour and back from one row to the next (and a travel-time sensor
    was once quarantined as falsified for it)."""

    periods: deque[tuple[float, dict[str, tuple[float, float]]]] = field(default_factory=deque)

    def add(self, period_s: float, means: dict[str, tuple[float, float]]) -> None:
        self.periods.append((period_s, means))
        while sum(p for p, _ in self.periods) - self.periods[0][0] >= NAV_WINDOW_S:
            self.periods.popleft()

    def speeds(self) -> dict[str, float] | None:
        """Link name → time-weighted mean speed (m/s); None before the first period."""
        if not self.periods:
            return None
        total = sum(period for period, _ in self.periods)
        return {name: sum(period * means[name][0] for period, means in self.periods) / total
                for name in self.periods[-1][1]}


@dataclass(frozen=True)
class TransportService:
    """How well the roads serve the city now, against the untouched baseline day.

    ``od_travel_time_s`` / ``baseline_od_travel_time_s``: quickest-route times per monitored OD;
    ``travel_time_ratio``: their mean ratio (1 = no impact). Vehicle counts are cars (platoons ×
    :data:`~.network.DELTAN`): ``vehicles_delayed`` are trips so far (ended or under way) past
    :data:`DELAY_FACTOR` × free flow; ``vehicles_unserved`` are trips the baseline finished and
    this day has not (still queued or stuck); ``vehicles_waiting`` cannot even enter the network.
    """

    at: datetime
    od_travel_time_s: dict[str, float]
    baseline_od_travel_time_s: dict[str, float]
    travel_time_ratio: float
    trips_completed: int
    baseline_trips_completed: int
    vehicles_delayed: int
    vehicles_unserved: int
    vehicles_waiting: int
    closed_links: tuple[str, ...] = ()
    dark_signals: tuple[str, ...] = ()
    incidents: tuple[str, ...] = field(default=())


class TransportTwin:
    """A signalised road grid with commuter demand that can be stepped, broken, attacked, commanded.

    ``start`` is the wall-clock time of simulated t = 0 (its hour picks the demand); ``seed``
    fixes demand factors and uxsim's route-choice randomness; ``sample_s`` is the default stride.
    """

    sector = Sector.TRANSPORTATION

    def __init__(
        self,
        *,
        start: datetime = DEFAULT_START,
        duration_h: float = 24.0,
        seed: int = 0,
        baseline: bool = True,
    ) -> None:
        if not 0 < duration_h <= 72:
            raise ValueError(f"duration_h must be in (0, 72], got {duration_h}")
        self.start = start
        self.duration_s = int(duration_h * 3600)
        self._world: Any = build_world(start=start, duration_s=self.duration_s, seed=seed, name="twin")
        self._base: Any = (
            build_world(start=start, duration_s=self.duration_s, seed=seed, name="baseline")
            if baseline
            else None
        )
        self._free_flow = od_times(self._world)
        self.sensors: tuple[SensorSpec, ...] = build_sensors()
        self._sensor_ids = {s.sensor_id for s in self.sensors}
        self.attacks = MeasurementAttacks()
        self.events: list[TwinEvent] = []
        self.faults: dict[str, tuple[FaultKind, float]] = {}
        self.closed: set[str] = set()
        self.splits: dict[str, float] = {n: 0.5 for n in SIGNALS}
        self.diverted: set[str] = set()  # junctions traffic is diverted from (``node:nRC/controller`` divert)
        self._saved: dict[str, tuple[float, float]] = {}
        self._onset: dict[str, int] = {}  # fault target → the twin's elapsed seconds when it began
        self._counts: dict[str, float] = {}
        self._elapsed_s = 0
        self._last_period = 0.0
        self._means: dict[str, tuple[float, float]] = {}  # link → mean speed, density over the last period
        self._probes, self._base_probes = ProbeSpeeds(), ProbeSpeeds()
        self._truth: list[Reading] = []
        self._observe()

    # -- clock ----------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._elapsed_s)

    @property
    def now_s(self) -> int:
        return self._elapsed_s

    def advance(self, seconds: float = 60.0) -> list[Reading]:
        """Run traffic ``seconds`` further (a positive multiple of :data:`STEP_S`) and return what
        the sensors now report; flows are counted over exactly this period."""
        whole = int(seconds)
        if whole != seconds or whole <= 0 or whole % STEP_S:
            raise ValueError(f"advance by a positive multiple of {STEP_S} s, not {seconds!r}")
        if self._elapsed_s + whole > self.duration_s - STEP_S:
            raise TwinError(f"the traffic run ends at {self.duration_s} s; raise duration_h")
        # loops report speed and occupancy averaged over their period, as field detectors do; the
        # baseline world is averaged alike, so that the service compares like with like
        if self._base is not None:
            self._base_probes.add(float(whole), _run_averaging(self._base, whole))
        self._means = _run_averaging(self._world, whole)
        self._probes.add(float(whole), self._means)
        self._elapsed_s += whole
        self._last_period = float(whole)
        self._observe()
        return self.readings()

    def step(self, t: datetime) -> list[Reading]:
        """Advance the clock to ``t`` (on the :data:`STEP_S` grid; never backwards)."""
        seconds = (t - self.now).total_seconds()
        if seconds <= 0:
            raise TwinError(
                f"the twin's clock is at {self.now.isoformat()}; it cannot step to {t.isoformat()}"
            )
        return self.advance(seconds)

    # -- sensors and service --------------------------------------------------------------------
    def _observe(self) -> None:
        self._truth = sample_all(self._world, self.sensors, self._counts, self._last_period, self.now,
                                 means=self._means, blocked=self.blocked_lanes(), reported=self.reported_incidents(),
                                 nav_speeds=self._probes.speeds(), dark=self.dark_signals(),
                                 reported_dark=self.reported_dark_signals())
        self.attacks.record(self._truth)

    def copy_for_trial(self) -> TransportTwin:
        """A deep copy to try commands on, without the baseline day: half the cost to copy and to step.
        Its `service` then compares with free-flow times (what a trial scores by, delayed trips, is
        the copy's own either way)."""
        base, self._base = self._base, None
        try:
            return copy.deepcopy(self)
        finally:
            self._base = base

    def blocked_lanes(self) -> set[str]:
        """Links where a stopped vehicle blocks the lane: an incident of :data:`LANE_BLOCKING` severity or more."""
        return {parse_asset_id(t)[1] for t, (k, share) in self.faults.items()
                if k is FaultKind.INCIDENT and share >= LANE_BLOCKING}

    def reported_incidents(self) -> set[str]:
        """Links with an incident record in the police dispatch (CAD): lane-blocking crashes that have
        lasted :data:`CAD_DELAY_S`, the time for the first emergency call to be taken and entered."""
        return {name for name in self.blocked_lanes()
                if self._elapsed_s - self._onset.get(f"link:{name}", self._elapsed_s) >= CAD_DELAY_S}

    def dark_signals(self) -> set[str]:
        """Signalised junctions whose controller is dark (a signal outage): what the UTC centre's poll shows."""
        return {parse_asset_id(t)[1] for t, (k, _) in self.faults.items() if k is FaultKind.SIGNAL_OUTAGE}

    def reported_dark_signals(self) -> set[str]:
        """Dark junctions the police dispatch has on record: those dark for :data:`CAD_DELAY_S` or more."""
        return {name for name in self.dark_signals()
                if self._elapsed_s - self._onset.get(f"node:{name}", self._elapsed_s) >= CAD_DELAY_S}

    def readings(self) -> list[Reading]:
        """What the sensors report now: the truth, falsified where an attack is active."""
        return self.attacks.apply(self._truth)

    def true_readings(self) -> list[Reading]:
        """The traffic as it is (for scoring detectors, never for the oracles)."""
        return list(self._truth)

    def sensor_ids(self) -> list[str]:
        return [s.sensor_id for s in self.sensors]

    def service(self) -> TransportService:
        """Travel-time impact against the baseline day, and the cars delayed, unserved or waiting."""
        times = od_times(self._world, self._probes.speeds(), self.blocked_lanes())
        base = od_times(self._base, self._base_probes.speeds()) if self._base is not None else dict(self._free_flow)
        ratio = sum(times[k] / base[k] for k in times) / len(times)
        done = _completed(self._world)
        base_done = _completed(self._base) if self._base is not None else done
        return TransportService(
            at=self.now,
            od_travel_time_s=times,
            baseline_od_travel_time_s=base,
            travel_time_ratio=ratio,
            trips_completed=done,
            baseline_trips_completed=base_done,
            vehicles_delayed=self._delayed(),
            vehicles_unserved=max(0, base_done - done),
            vehicles_waiting=sum(len(n.generation_queue) for n in self._world.NODES) * DELTAN,
            closed_links=tuple(sorted(self.closed)),
            dark_signals=tuple(
                sorted(t for t, (k, _) in self.faults.items() if k is FaultKind.SIGNAL_OUTAGE)
            ),
            incidents=tuple(sorted(t for t, (k, _) in self.faults.items() if k is FaultKind.INCIDENT)),
        )

    def _delayed(self) -> int:
        free: dict[tuple[str, str], float] = {}
        now = self._world.T * self._world.DELTAT
        count = 0
        for veh in self._world.VEHICLES.values():
            if veh.state in ("home", "abort"):
                continue
            key = (veh.orig.name, veh.dest.name)
            if key not in free:
                free[key] = _free_time(self._world, *key)
            took = veh.travel_time if veh.state == "end" else now - veh.departure_time_in_second
            count += took > DELAY_FACTOR * free[key] + DELAY_ALLOWANCE_S
        return count * DELTAN

    # -- faults ---------------------------------------------------------------------------------
    def inject_fault(self, kind: FaultKind, target: str, *, severity: float | None = None) -> TwinEvent:
        """Break the physics at ``target`` from the next step on.

        * INCIDENT on ``link:A-B``: ``severity`` in (0, 1] is the share of outflow capacity lost
          (default 0.9, a lane-blocking crash); 1 blocks the link completely.
        * SIGNAL_OUTAGE on ``node:nRC`` (a signalised node): the junction becomes an all-way stop.
        """
        element, name = parse_asset_id(target)
        if target in self.faults:
            raise InvalidFault(f"{target} already has a {self.faults[target][0].value} fault; clear it first")
        if kind is FaultKind.INCIDENT:
            if element != "link":
                raise InvalidFault(f"an incident needs a link:A-B target, not {target}")
            share = 0.9 if severity is None else float(severity)
            if not 0.0 < share <= 1.0:
                raise InvalidFault(f"incident severity is the capacity share lost, in (0, 1]; got {share}")
            link = self._world.get_link(name)
            self._saved[target] = (float(link.capacity_out), float(link.capacity_in))
            # of the link's saturation flow (`Link.capacity`), not of uxsim's default outflow cap, which is
            # twice it so as never to bind: a "90 %" crash on that cap still passed 529 veh/h, more than the
            # link carried, and the queue behind it took twenty minutes to show
            link.capacity_out = float(link.capacity) * (1.0 - share)
            link.capacity_out_remain = min(link.capacity_out_remain, link.capacity_out * self._world.DELTAT)
            if share >= 1.0:
                self._set_entry(name, closed=True)
            detail = f"outflow capacity {link.capacity_out * 3600:.0f} veh/h"
        elif kind is FaultKind.SIGNAL_OUTAGE:
            if element != "node" or name not in SIGNALS:
                raise InvalidFault(
                    f"a signal outage needs a signalised node ({', '.join(SIGNALS)}), not {target}"
                )
            node = self._world.get_node(name)
            for link in node.inlinks.values():
                link.signal_group = [0, 1]
            node.flow_capacity, node.number_of_lanes = ALL_WAY_STOP_VEH_S, 1
            node.flow_capacity_remain = ALL_WAY_STOP_VEH_S * self._world.DELTAT
            share = 1.0
            detail = f"all-way stop, {ALL_WAY_STOP_VEH_S * 3600:.0f} veh/h"
        else:
            raise InvalidFault(f"{kind.value} is not a transportation fault (incident or signal-outage)")
        self.faults[target] = (kind, share)
        self._onset[target] = self._elapsed_s
        return self._log(f"fault:{kind.value}", target, detail)

    def clear_fault(self, target: str) -> TwinEvent:
        """Clear the incident (capacity restored; a link closed by command stays closed) or
        restore the signal (its last timing)."""
        try:
            kind, share = self.faults.pop(target)
            self._onset.pop(target, None)
        except KeyError:
            raise InvalidFault(f"{target} has no active fault to clear") from None
        _, name = parse_asset_id(target)
        if kind is FaultKind.INCIDENT:
            link = self._world.get_link(name)
            link.capacity_out, _ = self._saved.pop(target)
            if share >= 1.0 and name not in self.closed:
                self._set_entry(name, closed=False)
        else:
            node = self._world.get_node(name)
            for link in node.inlinks.values():
                link.signal_group = [0 if _east_west(link) else 1]
            node.flow_capacity, node.number_of_lanes, node.flow_capacity_remain = None, None, 10e10
        return self._log(f"repaired:{kind.value}", target)

    def _set_entry(self, name: str, *, closed: bool) -> None:
        """Open or shut a link's entry and make every driver re-plan at once: uxsim routes around
        zero entry capacity, but a driver already queued for the link would otherwise wait forever."""
        link = self._world.get_link(name)
        if closed:
            link.capacity_in, link.capacity_in_remain = 0.0, 0.0
        else:
            link.capacity_in = link.capacity * 2  # uxsim's default entry capacity
        self._replan((link,))

    def _replan(self, changed: tuple[Any, ...]) -> None:
        """Make every driver re-plan at once; one waiting at a junction to enter a `changed` link chooses
        its next link again (uxsim would otherwise only re-plan at its next route update)."""
        world = self._world
        if world.T == 0:
            return  # nothing has moved yet: the first step's route search sees the change
        world.ROUTECHOICE.route_search_all(world.T * world.DELTAT)
        world.ROUTECHOICE.homogeneous_DUO_update()
        for veh in world.VEHICLES_LIVING.values():
            veh.route_pref_update(weight=1)
            if veh.state != "run":
                continue
            upcoming, here = getattr(veh, "route_next_link", None), getattr(veh, "link", None)
            if here is not None and any(here.end_node is link.start_node and upcoming is link for link in changed):
                veh.route_next_link_choice()

    def _divert(self, name: str, *, on: bool) -> None:
        """Divert traffic from junction `name` (each approach costs :data:`DIVERSION_S` more to route
        through) or lift the diversion."""
        inlinks = tuple(self._world.get_link(a) for a in approaches(name))
        for link in inlinks:
            link.congestion_pricing = _Toll(DIVERSION_S) if on else None
        (self.diverted.add if on else self.diverted.discard)(name)
        self._replan(inlinks)

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
        forged ``command`` and freeze ``sensor_id`` (normally the closed link's flow sensor)."""
        if sensor_id not in self._sensor_ids:
            raise UnknownAsset(
                f"no transportation sensor {sensor_id!r} (ids look like link:n10-n11/flow_veh_h)"
            )
        start_attack(self.attacks, self.apply, kind, sensor_id, now=self.now, magnitude=magnitude,
                     rate_per_hour=rate_per_hour, window=window, command=command)
        self._log(f"attack:{kind.value}", sensor_id.split("/")[0], sensor_id)

    def clear_attack(self, sensor_id: str) -> None:
        """The sensor reports the truth again (a spoofed command's effect stays until commanded back)."""
        attack = self.attacks.clear(sensor_id)
        self._log(f"attack-cleared:{attack.kind.value}", sensor_id.split("/")[0])

    # -- actuators ------------------------------------------------------------------------------
    def actuators(self) -> dict[str, tuple[str, ...]]:
        """Actuator id -> valid actions: a barrier on every link, a controller on every signal."""
        out = {f"link:{link.name}/barrier": _ACTIONS["link"] for link in self._world.LINKS}
        out.update({f"node:{n}/controller": _ACTIONS["node"] for n in SIGNALS})
        return out

    def actuator_id(self, target: str) -> str:
        """``link:A-B/barrier`` (route closure) or ``node:nRC/controller`` (signal timing)."""
        element, name = parse_asset_id(target)
        if element == "link":
            return f"{target}/barrier"
        if element == "node" and name in SIGNALS:
            return f"{target}/controller"
        raise UnknownAsset(f"{target} has no actuator (links have barriers; signals {', '.join(SIGNALS)})")

    def command(
        self, target: str, action: str, value: float | None = None, decision_ref: str = ""
    ) -> ActuatorCommand:
        """A well-formed command for ``target`` (the controller's way to build one)."""
        return ActuatorCommand(
            sector=Sector.TRANSPORTATION,
            asset_id=target,
            actuator_id=self.actuator_id(target),
            action=action,
            value=value,
            decision_ref=decision_ref,
        )

    def apply(self, cmd: ActuatorCommand) -> TwinEvent:
        """Carry out ``cmd`` from the next step on. Barrier: close/open the link. Controller: set
        ``value`` = the east-west green share of the cycle, in [0.1, 0.9]; divert traffic from the
        junction, or lift the diversion (`DIVERSION_S`)."""
        if cmd.sector is not Sector.TRANSPORTATION:
            raise InvalidCommand(
                f"the transportation twin takes transportation commands, not {cmd.sector.value}"
            )
        expected = self.actuator_id(cmd.asset_id)
        if cmd.actuator_id != expected:
            raise InvalidCommand(f"actuator {cmd.actuator_id!r} is not on {cmd.asset_id}; use {expected!r}")
        element, name = parse_asset_id(cmd.asset_id)
        if cmd.action not in _ACTIONS[element]:
            raise InvalidCommand(
                f"{cmd.asset_id} cannot {cmd.action!r}; valid: {', '.join(_ACTIONS[element])}"
            )
        if element == "link":
            closing = cmd.action == "close"
            blocked = self.faults.get(cmd.asset_id, (None, 0.0))[1] >= 1.0
            (self.closed.add if closing else self.closed.discard)(name)
            if not blocked:
                self._set_entry(name, closed=closing)
        elif cmd.action in ("divert", "undivert"):
            self._divert(name, on=cmd.action == "divert")
        else:
            low, high = _SPLIT_RANGE
            if cmd.value is None or not low <= cmd.value <= high:
                raise InvalidCommand(
                    f"set on {cmd.asset_id} needs value = east-west green share in [{low}, {high}]"
                )
            self._world.get_node(name).override_signal([cmd.value * CYCLE_S, (1 - cmd.value) * CYCLE_S])
            self.splits[name] = float(cmd.value)
        detail = cmd.action if cmd.value is None else f"{cmd.action}={cmd.value}"
        return self._log("command", cmd.asset_id, f"{detail} {cmd.decision_ref}".strip())

    def _log(self, kind: str, asset: str, detail: str = "") -> TwinEvent:
        event = TwinEvent(self.now, kind, asset, detail)
        self.events.append(event)
        return event
