"""A device's normal, learnt from its traffic: who talks to it, with which functions, where, how often.

`Profile.learn` turns a training window of observations (`gateway.observation.ObservationLog`, the
storm day's normal hours in the city) into one device's profile:

- its known clients (`Source.client_key`: the IP for Modbus, ``client_id@username`` for MQTT);
- per client, per (unit id, function code), the register spans it used, merged into intervals
  ``[start, end)``; FC 23 contributes its read span and its write span; FC 17 and 43 have no span;
- per MQTT client, the topics it published to and the filters it subscribed to;
- per client, its request rate: requests counted in consecutive windows of ``window_s`` over the
  whole training window (idle windows count as 0), with mean, standard deviation and maximum, and
  the alarm `limit` derived from them (`RATE_FACTOR`, `RATE_SIGMAS`, `RATE_FLOOR`: see `_limit`).

- whether a client sent byte-identical writes on different connections (a master that opens a
  connection per transaction and restarts its transaction ids at 1 does): for such a client an
  identical write on another connection is its normal, not a replay (`gateway.monitor`).

Declared maintenance (`Maintenance`) is added by hand, not learnt: an engineering client that may
read every register of the device (function 1-4, any span, any unit the device answers) and ask its
identity (FC 43/14 Read Device Identification, FC 17 Report Server ID). A maintenance read-out is
rare, so no training window would contain it; declaring it keeps it from ever being an alarm. It
never allows a write.

A declared interface (`Interface`) is added by the site too: the MQTT topics a client is documented to
publish to and the filters it subscribes to (in the city, a twin's readings, its acknowledgements of
commands and its service notices, `sectors.remote`). A device acknowledges a command only when it gets
one and announces a service change only when its service changes, so a quiet training window holds
neither; its documentation does. Like maintenance it is the site's statement, not learnt, and it adds
topics, never Modbus writes; a declared client with no training traffic is known but has no learnt rate.

Only requests the gateway let through are learnt (a refused write is not normal traffic). Saved and
loaded as JSON (the pydantic model below); a file that is not a profile is one `GatewayError`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import GatewayError
from gateway.modbus_frames import READ_FUNCTIONS, ModbusFrame
from gateway.mqtt_frames import PUBLISH, SUBSCRIBE, MqttPacket
from gateway.observation import Observation

__all__ = ["RATE_FACTOR", "RATE_FLOOR", "RATE_SIGMAS", "ClientProfile", "Interface", "Maintenance", "Profile", "Rate",
           "Use", "request_spans"]

RATE_FACTOR = 3.0  # the limit is at least 3x the busiest training window ...
RATE_SIGMAS = 6.0  # ... and at least mean + 6 standard deviations ...
RATE_FLOOR = 10  # ... and at least 10 requests a window (a client seen once or twice is not a flood at 3)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Use(_Model):
    """One (unit, function) a client used and the register spans ``[start, end)`` it touched."""

    unit: Annotated[int, Field(ge=0, le=255)]
    function: Annotated[int, Field(ge=1, le=127)]
    spans: tuple[tuple[int, int], ...] = ()

    def covers(self, start: int, count: int) -> bool:
        return any(lo <= start and start + count <= hi for lo, hi in self.spans)


class Rate(_Model):
    """Requests per window of `window_s` over the training window, and the alarm limit drawn from them."""

    window_s: Annotated[float, Field(gt=0)]
    windows: Annotated[int, Field(ge=0)]
    mean: float
    std: float
    max: int
    limit: float


class ClientProfile(_Model):
    key: str
    addresses: tuple[str, ...]
    requests: Annotated[int, Field(ge=0)]
    uses: tuple[Use, ...] = ()
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    rate: Rate
    repeats_writes: bool = False  # sent byte-identical writes on different connections in training


class Maintenance(_Model):
    """A declared engineering client: full read-out and identity queries are normal for it."""

    client: Annotated[str, Field(min_length=1)]  # a client key (Modbus: its IP)
    readout: bool = True
    identity: bool = True
    note: str = ""


class Interface(_Model):
    """A client's documented MQTT interface: topics (exact, no wildcards) it publishes to, filters it subscribes to."""

    client: Annotated[str, Field(min_length=1)]  # a client key: client_id@username
    publish: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    subscribe: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    note: str = ""


class Profile(_Model):
    """One device's learnt profile (the JSON a site keeps per device path)."""

    version: Literal[1] = 1
    protocol: Literal["modbus", "mqtt"]
    sector: str
    device: str
    window_s: Annotated[float, Field(gt=0)]
    trained_from: datetime | None = None
    trained_to: datetime | None = None
    observations: Annotated[int, Field(ge=0)] = 0
    units: tuple[int, ...] = ()  # Modbus unit ids the device answered in training
    clients: dict[str, ClientProfile] = {}
    maintenance: tuple[Maintenance, ...] = ()
    interfaces: tuple[Interface, ...] = ()

    # --- learning -----------------------------------------------------------------------------

    @classmethod
    def learn(cls, observations: Iterable[Observation], *, device: str | None = None,
              maintenance: Sequence[Maintenance] = (), window_s: float = 10.0) -> Profile:
        """The profile of `device` (or of the one device the observations are about) from a training window."""
        seen = [o for o in observations if device is None or o.device == device]
        devices = {(o.protocol, o.sector, o.device) for o in seen}
        if len(devices) != 1:
            raise GatewayError(f"a profile is learnt from one device's traffic; these observations cover "
                               f"{len(devices)} ({', '.join(sorted(d[2] for d in devices)) or 'none'})")
        protocol, sector, name = devices.pop()
        requests = [o for o in seen if o.kind == "frame" and o.direction == "request" and o.action == "pass"]
        t0 = min(o.mono for o in seen)
        t1 = max(o.mono for o in seen)
        n_windows = max(1, math.floor((t1 - t0) / window_s))
        per_client: dict[str, list[Observation]] = defaultdict(list)
        for o in requests:
            per_client[o.source.client_key].append(o)
        clients = {key: _client(key, obs, t0, n_windows, window_s) for key, obs in per_client.items()}
        units = sorted({o.frame.unit_id for o in seen if isinstance(o.frame, ModbusFrame)
                        and o.direction == "response" and o.frame.exception is None})
        walls = [o.wall for o in seen]
        return cls(protocol=protocol, sector=sector, device=name, window_s=window_s, trained_from=min(walls),
                   trained_to=max(walls), observations=len(seen), units=tuple(units), clients=clients,
                   maintenance=tuple(maintenance))

    def with_maintenance(self, *entries: Maintenance) -> Profile:
        """This profile with `entries` declared as well."""
        return self.model_copy(update={"maintenance": (*self.maintenance, *entries)})

    def with_interfaces(self, *entries: Interface) -> Profile:
        """This profile with `entries` declared as well."""
        return self.model_copy(update={"interfaces": (*self.interfaces, *entries)})

    # --- queries the monitor asks ----------------------------------------------------------------

    def knows(self, client_key: str) -> bool:
        return client_key in self.clients or self.maintainer(client_key) is not None \
            or self.interface(client_key) is not None

    def interface(self, client_key: str) -> Interface | None:
        return next((i for i in self.interfaces if i.client == client_key), None)

    def maintainer(self, client_key: str) -> Maintenance | None:
        return next((m for m in self.maintenance if m.client == client_key), None)

    def allows(self, client_key: str, frame: ModbusFrame | MqttPacket) -> bool:
        """Whether the request `frame` from `client_key` is inside its profile or its declared maintenance."""
        if isinstance(frame, MqttPacket):
            return self._allows_mqtt(client_key, frame)
        m = self.maintainer(client_key)
        if m is not None and ((m.identity and frame.is_identity) or (m.readout and frame.function in READ_FUNCTIONS)):
            return True
        client = self.clients.get(client_key)
        if client is None:
            return False
        use = next((u for u in client.uses if u.unit == frame.unit_id and u.function == frame.function), None)
        if use is None:
            return False
        return all(use.covers(start, count) for start, count in request_spans(frame))

    def _allows_mqtt(self, client_key: str, packet: MqttPacket) -> bool:
        client, declared = self.clients.get(client_key), self.interface(client_key)
        if client is None and declared is None:
            return False
        publish = (*(client.publish if client else ()), *(declared.publish if declared else ()))
        subscribe = (*(client.subscribe if client else ()), *(declared.subscribe if declared else ()))
        if packet.type == PUBLISH:
            return packet.topic in publish
        if packet.type == SUBSCRIBE:
            return all(t in subscribe for t in packet.topics)
        return True

    # --- files ---------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Self:
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:  # ValidationError and JSONDecodeError are ValueErrors
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]) \
                if isinstance(exc, ValidationError) else str(exc)
            raise GatewayError(f"device profile {path}: {detail}") from None


def request_spans(frame: ModbusFrame) -> list[tuple[int, int]]:
    """The (start, count) spans a Modbus request touches (FC 23: read and write); none for identity queries."""
    spans = []
    if frame.address is not None and frame.quantity is not None and not frame.is_identity:
        spans.append((frame.address, frame.quantity))
    if frame.read_address is not None and frame.read_quantity is not None:
        spans.append((frame.read_address, frame.read_quantity))
    return spans


def _merge(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def _client(key: str, obs: list[Observation], t0: float, n_windows: int, window_s: float) -> ClientProfile:
    spans: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    publish: set[str] = set()
    subscribe: set[str] = set()
    for o in obs:
        f = o.frame
        if isinstance(f, ModbusFrame):
            spans[(f.unit_id, f.function)].extend((s, s + n) for s, n in request_spans(f))
        elif isinstance(f, MqttPacket):
            if f.type == PUBLISH and f.topic is not None:
                publish.add(f.topic)
            elif f.type == SUBSCRIBE:
                subscribe.update(f.topics)
    counts = [0] * n_windows
    for o in obs:  # a last, partial window is left out: it would read as a slow one
        i = int((o.mono - t0) / window_s)
        if i < n_windows:
            counts[i] += 1
    mean = sum(counts) / n_windows
    std = math.sqrt(sum((c - mean) ** 2 for c in counts) / n_windows)
    rate = Rate(window_s=window_s, windows=n_windows, mean=mean, std=std, max=max(counts),
                limit=_limit(mean, std, max(counts)))
    uses = tuple(Use(unit=u, function=fc, spans=_merge(s)) for (u, fc), s in sorted(spans.items()))
    write_conns: dict[str | None, set[int]] = defaultdict(set)
    for o in obs:
        if o.write:
            write_conns[o.digest].add(o.connection)
    return ClientProfile(key=key, addresses=tuple(sorted({o.source.address for o in obs})), requests=len(obs),
                         uses=uses, publish=tuple(sorted(publish)), subscribe=tuple(sorted(subscribe)), rate=rate,
                         repeats_writes=any(len(c) > 1 for c in write_conns.values()))


def _limit(mean: float, std: float, busiest: int) -> float:
    """A window holding more than this many requests is a rate alarm.

    3x the busiest window of training catches floods (an attacker's loop runs at hundreds a second
    where a poller runs at a few) while a poll that doubles up after a hiccup stays below; mean + 6σ
    keeps a bursty client's own bursts normal; the floor keeps a rarely-seen client from alarming on
    a handful of requests.
    """
    return max(RATE_FACTOR * busiest, mean + RATE_SIGMAS * std, float(RATE_FLOOR))
