"""Commands to the field over MQTT, each answered by the device's acknowledgement (`sectors.remote`).

The controller sends an `ActuatorCommand` on ``qeaims-cmd/<sector>`` and waits for the matching
result on ``qeaims-ack/<sector>`` (matched by decision ref and "actuator action"). A device refuses
anything whose decision is not on-chain, so a refusal here is an answer, not an error to retry.
Simulation controls (``qeaims-sim/<sector>``) go the same way: the crews' repairs use them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from bus.client import NamedClient
from bus.secure import SecureLinks
from core.errors import QeaimsError
from core.messages import ActuatorCommand, Sector
from sectors.remote import SimControl, cmd_topic, sim_topic

__all__ = ["ACK_FILTER", "ONLINE_S", "SVC_FILTER", "Ack", "CommandTimeout", "Commander"]

ACK_FILTER = "qeaims-ack/+"  # every sector's acknowledgements
SVC_FILTER = "qeaims-svc/+"  # every running twin's service level, each report period: who is online
ONLINE_S = 120.0  # a sector heard from within this long counts as having devices online


class CommandTimeout(QeaimsError):
    """A device did not acknowledge in time (it may be down; the step is retried)."""


@dataclass(frozen=True)
class Ack:
    ref: str
    what: str
    ok: bool
    error: str
    at: str

    @property
    def already(self) -> bool:
        """Refused only because the device is already in the wanted state (a resent command)."""
        return not self.ok and "already" in self.error


class Commander(NamedClient):
    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883, client_id: str = "controller",
                 links: SecureLinks | None = None) -> None:
        # the pause after connecting puts the acknowledgement subscription in place before any command
        super().__init__(client_id, host=host, port=port, settle_s=0.2, links=links)
        self._listen([(ACK_FILTER, 1), (SVC_FILTER, 0)], self._on_ack)
        self._acks: list[Ack] = []
        self._heard: dict[str, float] = {}  # sector → when it last published anything we read
        self._cond = threading.Condition()

    def online(self, sector: Sector) -> bool:
        """Whether `sector`'s devices have been heard from lately (service levels or answers)."""
        heard = self._heard.get(sector.value)
        return heard is not None and time.monotonic() - heard < ONLINE_S

    def _on_ack(self, topic: str, payload: bytes) -> None:
        self._heard[topic.rpartition("/")[2]] = time.monotonic()
        if not topic.startswith("qeaims-ack/"):
            return  # a service level: only who is online matters here
        try:
            body = json.loads(payload)
            ack = Ack(str(body["ref"]), str(body["what"]), bool(body["ok"]), str(body["error"]), str(body["at"]))
        except (ValueError, KeyError, TypeError):
            return
        with self._cond:
            self._acks.append(ack)
            self._cond.notify_all()

    def _pop(self, ref: str, what: str) -> Ack | None:
        """The matching answer, taken off the list (the caller holds `_cond`)."""
        for i, ack in enumerate(self._acks):
            if ack.ref == ref and ack.what == what:
                return self._acks.pop(i)
        return None

    def _wait(self, ref: str, what: str, timeout_s: float) -> Ack:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                ack = self._pop(ref, what)
                if ack is not None:
                    return ack
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CommandTimeout(f"no acknowledgement for {what!r} ({ref}) within {timeout_s:g} s")
                self._cond.wait(left)

    def post(self, commands: list[ActuatorCommand]) -> None:
        """Send commands without waiting (each device takes its own in order at its next step)."""
        for command in commands:
            self._send(cmd_topic(command.sector), command.model_dump_json().encode(), qos=1)

    def answers(self, commands: list[ActuatorCommand], *, timeout_s: float,
                skip: Collection[Sector] = ()) -> list[Ack | None]:
        """The answers to posted commands, waiting up to `timeout_s` in all; None for a device that
        did not answer in time (it may not be running). A command to a sector in `skip` (one not heard
        from lately, see `offline`) gets None at once rather than a wait for a device that is not there."""
        deadline = time.monotonic() + timeout_s
        out: list[Ack | None] = []
        for command in commands:
            if command.sector in skip:
                out.append(None)
                continue
            try:
                out.append(self._wait(command.decision_ref, f"{command.actuator_id} {command.action}",
                                      max(0.0, deadline - time.monotonic())))
            except CommandTimeout:
                out.append(None)
        return out

    def offline(self, sectors: Iterable[Sector]) -> frozenset[Sector]:
        """Which of `sectors` have no device heard from lately (`online`), read once for a whole batch."""
        return frozenset(s for s in set(sectors) if not self.online(s))

    def send_all(self, commands: list[ActuatorCommand], *, timeout_s: float = 10.0) -> list[Ack | None]:
        """`post` then `answers`: several devices at once, their answers waited for together."""
        self.post(commands)
        return self.answers(commands, timeout_s=timeout_s)

    def post_control(self, sector: Sector, control: SimControl) -> str:
        """Send a simulation control without waiting; returns what `take_ack` matches its answer by."""
        self._send(sim_topic(sector), control.model_dump_json().encode(), qos=1)
        return f"{control.op} {control.kind} {control.target}".strip()

    def pace(self, sectors: Iterable[Sector], payload: bytes) -> None:
        """Send a pace order (`sectors.pace.pace_order`) to each sector's twin, without waiting: it is
        renewed while it should hold, and a lost one expires on its own."""
        for sector in sectors:
            self._send(sim_topic(sector), payload, qos=1)

    def take_ack(self, what: str, ref: str = "") -> Ack | None:
        """The answer to a posted control or command, if it has arrived (never waits)."""
        with self._cond:
            return self._pop(ref, what)

    def control(self, sector: Sector, control: SimControl, *, timeout_s: float = 30.0) -> Ack:
        """Send one simulation control (a crew's repair in the twin) and wait for its answer."""
        self._send(sim_topic(sector), control.model_dump_json().encode(), qos=1)
        what = f"{control.op} {control.kind} {control.target}".strip()
        return self._wait("", what, timeout_s)
