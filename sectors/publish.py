"""A twin's sensors on the wire: each report period, every reading is published over MQTT.

This is exactly what a field gateway does (`oracles/ingest/mqtt.py` has the topic scheme), so an
oracle cannot tell a twin from a site: both arrive through the broker, QoS 1, as gateway batches
(``qeaims/<sector>/_batch/<twin's client id>``, one message per report period, split at the
batch limits): the broker's cost is per message, and one message per sensor saturated it. The twin's clock runs `speed` times faster than the wall clock (1 = real time); its
timestamps are the twin's own, so a day of simulated operation can be replayed in minutes. A pace
order (`sectors.pace`) changes that rate while the twin runs: a scenario slows
the city to real time around each fault so that its processing costs true field time.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Sequence

import paho.mqtt.client as paho

from bus.client import NamedClient
from bus.errors import IngestError
from bus.mqtt import batch_topic, encode_batch, traced
from bus.secure import SecureLinks
from core.errors import ConfigError, QeaimsError
from core.logs import log_line
from core.messages import Reading
from sectors.pace import Pace, is_pace, parse_pace
from sectors.remote import (
    DecisionCheck,
    ack_payload,
    ack_topic,
    cmd_topic,
    parse_command,
    parse_control,
    sim_topic,
    svc_topic,
)
from sectors.runner import TwinRunner
from sectors.sent_log import SentLog
from sectors.service import ServiceLevel, service_level, service_message

__all__ = ["PACE_POLL_S", "TwinPublisher"]

PACE_POLL_S = 0.05  # wall seconds between two looks at the pace while a twin waits out its period


class TwinPublisher(NamedClient):
    """Publishes a twin's readings and, with `decisions`, takes commands and controls (`sectors.remote`)."""

    def __init__(self, runner: TwinRunner, *, host: str = "127.0.0.1", port: int = 1883, speed: float = 1.0,
                 client_id: str = "", decisions: DecisionCheck | None = None, links: SecureLinks | None = None,
                 sent_log: SentLog | None = None) -> None:
        """With `sent_log`, each period is logged before it is published and the recent ones are resent
        after the broker was lost and found again (`sectors.sent_log`; `resend_recent` at a restart)."""
        if not speed > 0:
            raise ConfigError(f"speed must be positive, got {speed}")
        super().__init__(client_id or f"twin-{runner.sector.value}", host=host, port=port, links=links)
        self.runner, self.speed = runner, speed
        self.pace = Pace(speed)
        self._pace_was = speed  # the pace the last slice of waiting ran at
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self.published = 0
        self.steps = 0
        self.decisions = decisions
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.results: list[dict[str, object]] = []  # what each command or control came to
        # (decision, actuator, action) done: a decision moves an actuator once. A controller resending
        # after a restart gets "already" (which it counts as done); an attacker replaying an old,
        # still-valid decision (isolate under proposal 5, after the node came back) moves nothing.
        self._carried_out: set[tuple[str, str, str]] = set()
        self.service: ServiceLevel | None = None  # the last service level published
        self.sent_log = sent_log
        self.resent = 0  # periods published again (`resend_recent`)
        self._connects_seen = 1  # the connection `connect` made; another one is a broker found again
        sector = runner.sector
        self._listen([(sim_topic(sector), 1), *([(cmd_topic(sector), 1)] if decisions is not None else [])],
                     self._on_message)

    def _on_message(self, topic: str, payload: bytes) -> None:
        if not (topic == sim_topic(self.runner.sector) and is_pace(payload)):
            if self.decisions is not None:  # commands and controls wait for the stepping thread
                self._inbox.put((topic, payload))
            return
        try:  # a pace order takes effect at once (the stepping thread reads the pace as it waits)
            order = parse_pace(payload)
        except ValueError as exc:
            log_line("qeaims.twin", "pace-refused", sector=self.runner.sector.value, error=str(exc))
            return
        self.pace.take(order)
        log_line("qeaims.twin", "pace", sector=self.runner.sector.value, pace=order.pace, until=order.until,
                 reason=order.reason)

    def apply_pending(self) -> int:
        """Carry out the queued commands and controls, in arrival order; returns how many."""
        done = 0
        while True:
            try:
                topic, payload = self._inbox.get_nowait()
            except queue.Empty:
                return done
            done += 1
            ref, what, error = "", topic, ""
            try:
                if topic == cmd_topic(self.runner.sector):
                    command = parse_command(payload, self.runner.sector)
                    ref, what = command.decision_ref, f"{command.actuator_id} {command.action}"
                    key = (command.decision_ref, command.actuator_id, command.action)
                    if key in self._carried_out:
                        raise PermissionError(f"already carried out for {command.decision_ref}: a repeated or "
                                              "replayed command is not acted on twice")
                    refused = self.decisions(command) if self.decisions is not None else "commands are off"
                    if refused:
                        raise PermissionError(refused)
                    self.runner.twin.apply(command)
                    self._carried_out.add(key)
                else:
                    control = parse_control(payload)
                    what = f"{control.op} {control.kind} {control.target}".strip()
                    control.apply_to(self.runner.twin)
            except (QeaimsError, ValueError, TypeError, PermissionError) as exc:
                error = str(exc) or type(exc).__name__
            result = {"ref": ref, "what": what, "ok": not error, "error": error, "at": self.runner.now.isoformat()}
            self.results.append(result)
            log_line("qeaims.twin", "twin-command", sector=self.runner.sector.value, **result)
            self._send(ack_topic(self.runner.sector), ack_payload(
                ref=ref, what=what, ok=not error, error=error, at=self.runner.now.isoformat()), qos=1)

    def publish(self, readings: Sequence[Reading], timeout_s: float = 30.0, *, stamped: float | None = None) -> int:
        """Publish readings (QoS 1, gateway batches traced with `stamped`, the wall time the snapshot was
        taken, default now) and wait until the broker acknowledged the last one."""
        self._publish_batches(encode_batch(readings), time.time() if stamped is None else stamped, timeout_s)
        self.published += len(readings)
        return len(readings)

    def _publish_batches(self, batches: Sequence[bytes], stamped: float, timeout_s: float = 30.0) -> None:
        last: paho.MQTTMessageInfo | None = None
        topic = batch_topic(self.runner.sector, self.client_id)
        for payload in traced(batches, stamped):
            last = self._send(topic, payload, qos=1) or last
        if last is not None:
            try:
                last.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as exc:  # paho: not connected / queue refused
                raise IngestError(f"lost the MQTT broker at {self.host}:{self.port}: {exc}") from exc
            if not last.is_published():
                raise IngestError(f"the MQTT broker at {self.host}:{self.port} acknowledged nothing for {timeout_s} s")

    def resend_recent(self, reason: str) -> int:
        """Publish again the periods of the sent log's window (`sectors.sent_log`), oldest first, and wait
        for the broker's acknowledgement; returns how many. The oracles drop what they already hold."""
        self._connects_seen = max(self.connects, 1)
        if self.sent_log is None:
            return 0
        periods = self.sent_log.recent()
        for period in periods:
            self._publish_batches(period.payloads, period.stamped)
            self.sent_log.mark_published(period.step)
        if periods:
            self.resent += len(periods)
            log_line("qeaims.twin", "twin-resent", sector=self.runner.sector.value, reason=reason,
                     periods=len(periods), first=periods[0].now.isoformat(), last=periods[-1].now.isoformat())
        return len(periods)

    def _resend_if_reconnected(self) -> None:
        if self.sent_log is not None and self.connects > self._connects_seen:
            self.resend_recent("reconnected")

    def publish_service(self, *, stepped: float | None = None) -> ServiceLevel:
        """Publish the twin's service level now on ``qeaims-svc/<sector>`` (QoS 0 on a plain broker: the
        next period's supersedes a lost one; through links QoS 1, as every envelope: `bus.client`); see
        `sectors.service`."""
        sector = self.runner.sector
        level = service_level(sector, self.runner.twin)
        body = json.dumps(service_message(sector, self.runner.now, level, wall=stepped), sort_keys=True).encode()
        self._send(svc_topic(sector), body, qos=0)
        self.service = level
        return level

    def run(self, stop: threading.Event, *, steps: int | None = None,
            on_step: Callable[[list[Reading]], None] | None = None) -> None:
        """Advance the twin one report period at a time, publishing each snapshot and then its service
        level (`publish_service`), until `stop` or `steps`.

        A lost broker ends the run with `IngestError` (the supervisor restarts the twin, which resumes
        its clock from `on_step`'s record) rather than buffering an unbounded backlog here.
        """
        owed = 0.0  # field seconds the twin still has to wait out before its next step (< 0: behind)
        mark = time.monotonic()
        while not stop.is_set() and (steps is None or self.steps < steps):
            self._resend_if_reconnected()
            self.apply_pending()
            readings = self.runner.advance()
            stepped = time.time()  # the twin's clock reached runner.now: readings stamped, service measured
            batches = encode_batch(readings)
            # written ahead: a restart resends it rather than stepping it again
            logged = self.sent_log.append(self.runner.now, stepped, batches) if self.sent_log is not None else None
            self._publish_batches(batches, stepped)
            if self.sent_log is not None and logged is not None:
                self.sent_log.mark_published(logged)
            self.published += len(readings)
            self.publish_service(stepped=stepped)
            self.steps += 1
            if on_step is not None:
                on_step(readings)
            owed, mark = self._wait_out(owed + self.runner.period_s, mark, stop)

    def _wait_out(self, owed: float, mark: float, stop: threading.Event) -> tuple[float, float]:
        """Wait until `owed` field seconds have passed since `mark` (monotonic) at the pace in force;
        returns what is still owed (negative: the twin is behind its pace and steps again at once,
        as a fixed schedule catches up) and the new mark.

        The pace is re-read every `PACE_POLL_S`, so an order or its expiry takes effect within that
        (a few field seconds at 30x); the integral keeps each slice at the pace it ran at. A new
        pace starts a new schedule: a backlog built at the old pace is forgiven, not caught up in a
        burst, which in a real-time window would be field time racing past the very fault it is for.
        """
        pace = self._pace_was
        while True:
            now = time.monotonic()
            owed -= (now - mark) * pace
            mark = now
            if (current := self.pace.now()) != pace:
                pace, owed = current, max(owed, 0.0)
            self._pace_was = pace
            if owed <= 0 or stop.wait(min(owed / pace, PACE_POLL_S)):
                return owed, mark
            self._resend_if_reconnected()  # a slow twin does not wait for its next period to resend
