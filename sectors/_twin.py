"""What every sector twin shares: its errors, its ground-truth event log and its attack layer.

A twin has two faces. The *physics* (power flow, hydraulics, queues) is always true; the *sensors*
report it, and a cyber attack sits between the two. Keeping the attack layer here, outside any one
sector's physics, means every twin falsifies readings the same way (BATADAL style), and a detector
can be scored on the gap between :meth:`MeasurementAttacks.apply` output and the true readings.

Error tree (a branch of :class:`core.errors.QeaimsError`, so the command shows one line)::

    TwinError                 a twin refused a request
    ├── UnknownAsset          no such asset, sensor or actuator in this twin
    ├── InvalidCommand        an actuator command the device cannot carry out
    ├── InvalidFault          a fault that cannot be injected or cleared there
    └── InvalidAttack         an attack with missing or impossible parameters

Spoofed commands change the physics, so each twin implements them itself (typically: carry out
the command and :meth:`MeasurementAttacks.freeze` the actuator's state sensor to hide it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from core.errors import QeaimsError
from core.messages import ActuatorCommand, AttackKind, Reading

__all__ = [
    "Attack",
    "InvalidAttack",
    "InvalidCommand",
    "InvalidFault",
    "MeasurementAttacks",
    "TwinError",
    "TwinEvent",
    "UnknownAsset",
    "start_attack",
]


class TwinError(QeaimsError):
    """A sector twin refused a request; the message names the asset and what would be valid."""


class UnknownAsset(TwinError):
    """The asset, sensor or actuator id does not exist in this twin."""


class InvalidCommand(TwinError):
    """The actuator exists but cannot do what the command asks (wrong action, value, sector)."""


class InvalidFault(TwinError):
    """The fault kind does not apply to that asset, or there is no such fault to clear."""


class InvalidAttack(TwinError):
    """The attack lacks a parameter its kind needs, or targets something it cannot falsify."""


@dataclass(frozen=True)
class TwinEvent:
    """Ground truth the sensors do not show: when a fault began, which device tripped, and so on.

    Scenario reports compute detection and restoration times from these (fault onset is known
    only to the twin), never from what the oracles saw.
    """

    at: datetime
    kind: str
    asset_id: str
    detail: str = ""


@dataclass
class Attack:
    """One active attack on one sensor; fields not used by its kind stay at their defaults."""

    kind: AttackKind
    sensor_id: str
    start: datetime
    magnitude: float = 0.0
    rate_per_hour: float = 0.0
    frozen_value: float = 0.0
    replay: tuple[float, ...] = ()
    samples_since_start: int = 0


@dataclass
class MeasurementAttacks:
    """Falsifies readings per sensor while the twin's physics stays true.

    The twin calls :meth:`record` once per simulation step with the true readings (that history is
    what a replay attack replays and what a frozen value freezes), and :meth:`apply` whenever it
    reports readings. ``history`` bounds memory: samples kept per sensor.
    """

    history: int = 1440
    _past: dict[str, deque[float]] = field(default_factory=dict)
    _active: dict[str, Attack] = field(default_factory=dict)

    @property
    def active(self) -> dict[str, Attack]:
        """Attacks in force, by sensor id (a copy: mutate through inject/clear only)."""
        return dict(self._active)

    def record(self, readings: Iterable[Reading]) -> None:
        """Remember one step of true values and advance every replay by one sample."""
        for reading in readings:
            past = self._past.get(reading.sensor_id)
            if past is None:
                past = self._past[reading.sensor_id] = deque(maxlen=self.history)
            past.append(reading.value)
        for attack in self._active.values():
            attack.samples_since_start += 1

    def inject(
        self,
        kind: AttackKind,
        sensor_id: str,
        *,
        at: datetime,
        magnitude: float | None = None,
        rate_per_hour: float | None = None,
        window: int | None = None,
    ) -> Attack:
        """Start falsifying ``sensor_id``: bias adds ``magnitude``, drift grows by ``rate_per_hour``,
        frozen holds the last true value, replay loops the last ``window`` true samples."""
        past = self._past.get(sensor_id)
        if not past:
            raise UnknownAsset(f"sensor {sensor_id!r} has no recorded samples in this twin")
        attack = Attack(kind=kind, sensor_id=sensor_id, start=at, frozen_value=past[-1])
        if kind is AttackKind.BIAS:
            attack.magnitude = _required(kind, "magnitude", magnitude)
        elif kind is AttackKind.DRIFT:
            attack.rate_per_hour = _required(kind, "rate_per_hour", rate_per_hour)
        elif kind is AttackKind.REPLAY:
            size = int(_required(kind, "window", None if window is None else float(window)))
            if size < 1 or size > len(past):
                raise InvalidAttack(f"replay window must be 1..{len(past)} samples of {sensor_id}, not {size}")
            attack.replay = tuple(past)[-size:]
        elif kind is not AttackKind.FROZEN:
            raise InvalidAttack(f"{kind.value} changes the physics; the twin handles it, not the sensor layer")
        self._active[sensor_id] = attack
        return attack

    def freeze(
        self, sensor_id: str, *, at: datetime, kind: AttackKind = AttackKind.FROZEN, value: float | None = None
    ) -> Attack:
        """Hold ``sensor_id`` at ``value`` (default: its last recorded true value). A twin hides a
        spoofed command's effect this way, passing the value the sensor showed just before it."""
        attack = self.inject(AttackKind.FROZEN, sensor_id, at=at)
        attack.kind = kind
        if value is not None:
            attack.frozen_value = float(value)
        return attack

    def clear(self, sensor_id: str) -> Attack:
        """Stop falsifying ``sensor_id``; raises if it was not under attack."""
        try:
            return self._active.pop(sensor_id)
        except KeyError:
            raise InvalidAttack(f"sensor {sensor_id!r} is not under attack") from None

    def apply(self, readings: Iterable[Reading]) -> list[Reading]:
        """The readings as the sensors report them: attacked ones replaced, the rest untouched."""
        out: list[Reading] = []
        for reading in readings:
            attack = self._active.get(reading.sensor_id)
            if attack is not None:
                reading = reading.model_copy(update={"value": _falsified(attack, reading)})
            out.append(reading)
        return out


def _falsified(attack: Attack, reading: Reading) -> float:
    if attack.kind is AttackKind.BIAS:
        return reading.value + attack.magnitude
    if attack.kind is AttackKind.DRIFT:
        hours = (reading.timestamp - attack.start).total_seconds() / 3600.0
        return reading.value + attack.rate_per_hour * hours
    if attack.kind is AttackKind.REPLAY:
        return attack.replay[attack.samples_since_start % len(attack.replay)]
    return attack.frozen_value


def _required(kind: AttackKind, name: str, value: float | None) -> float:
    if value is None:
        raise InvalidAttack(f"a {kind.value} attack needs {name}=")
    return float(value)


def start_attack(
    attacks: MeasurementAttacks,
    apply: Callable[[ActuatorCommand], object],
    kind: AttackKind,
    sensor_id: str,
    *,
    now: datetime,
    magnitude: float | None,
    rate_per_hour: float | None,
    window: int | None,
    command: ActuatorCommand | None,
) -> None:
    """Falsify a sensor, or for SPOOFED_COMMAND carry out the forged `command` through the twin's own
    `apply` and freeze the sensor so the change stays hidden. If the command is refused, the
    freeze is undone: a spoof that did nothing must not leave a frozen sensor behind."""
    if kind is AttackKind.SPOOFED_COMMAND:
        if command is None:
            raise InvalidAttack("a spoofed-command attack needs command=ActuatorCommand(...)")
        attacks.freeze(sensor_id, at=now, kind=kind)
        try:
            apply(command)
        except TwinError:
            attacks.clear(sensor_id)
            raise
    else:
        attacks.inject(kind, sensor_id, at=now, magnitude=magnitude, rate_per_hour=rate_per_hour, window=window)
