"""The gateway: a TCP proxy in front of one device path that watches both directions and enforces a `Policy`.

One `Gateway` stands in front of one upstream (a Modbus TCP device, or the MQTT broker) and clients
connect to it instead. Per connection it reassembles frames in both directions
(`gateway.modbus_frames`, `gateway.mqtt_frames`), hands every frame, refusal and connection event
to its observer (`Monitor`, `ObservationLog`) and forwards whole frames only, so what it refuses
never reaches the device in part. It runs on its own loop thread (`start`/`stop` from synchronous
code); `monitor` may be swapped while it runs (learn a profile, then start detecting).

Enforcement, read from the `Policy` on every decision (so a change applies to the next frame):

- *denied source*: a connection from a denied address is closed at accept; an MQTT client whose
  CONNECT presents a denied client id or username gets CONNACK "not authorised" and is closed; a
  connection already open when its source is denied is closed within `SWEEP_S`. Each refusal is an
  observation with ``action="refused"``.
- *quarantined device* or *safe mode*: write requests are refused, reads pass. For Modbus a write
  is anything not known to be read-only (`ModbusFrame.is_write`): FC 5, 6, 15, 16, 21, 22, 23, but
  also FC 8 diagnostics (it can restart a device) and any code the gateway does not know. Modbus answers the
  write with exception 01 ILLEGAL FUNCTION (`refuse_code`; 0x0B is the other answer a real gateway
  gives) in the request's own transaction, so a client sees a prompt, well-formed refusal, not a
  timeout; MQTT has no refusal for a QoS 0 PUBLISH, so the connection is closed (what a broker does
  to a client that publishes where its ACL forbids, with MQTT 3.1.1).
- evidence: every observation carries the SHA-256 of its frame's bytes, except that a CONNECT's
  password is left out of the hash (`mqtt_frames.without_secret`): hashes go on a public chain.
- *malformed* bytes from a client (not a Modbus ADU / MQTT packet): the connection is closed; from
  the upstream likewise (the stream cannot be resynchronised either way).

A source is the peer's IP and, for MQTT, the client id and user name of its CONNECT. Writes over
MQTT are PUBLISHes whose topic matches one of `command_topics` (MQTT filter syntax); the city's
telemetry topics (`bus.mqtt`) are never commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, Self

from gateway.errors import FrameError, GatewayError
from gateway.loop import LoopThread
from gateway.modbus_frames import ILLEGAL_FUNCTION, ModbusFrame, ModbusStream, exception_response
from gateway.mqtt_frames import CONNECT, PUBLISH, MqttPacket, MqttStream, connack_refused, without_secret
from gateway.observation import Kind, Observation, Observer, Source, frame_hash
from gateway.policy import Policy

__all__ = ["COMMAND_TOPICS", "SWEEP_S", "Gateway", "topic_matches"]

log = logging.getLogger(__name__)

COMMAND_TOPICS: tuple[str, ...] = ("qeaims/+/_cmd/#",)  # the city's command level, beside `_batch`
SWEEP_S = 0.25  # how often open connections are checked against new deny entries
READ_SIZE = 65536


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT topic filter matching (`+` one level, `#` the rest), as a broker applies subscriptions."""
    p, t = pattern.split("/"), topic.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(p) == len(t)


class _Nobody:
    def observe(self, obs: Observation) -> None:
        pass


@dataclass
class _Conn:
    number: int
    source: Source
    requests: ModbusStream | MqttStream
    responses: ModbusStream | MqttStream
    writer: asyncio.StreamWriter


class Gateway:
    """A watching, enforcing proxy for one device path."""

    def __init__(self, upstream_host: str, upstream_port: int, *, listen_host: str = "127.0.0.1",
                 listen_port: int = 0, protocol: Literal["modbus", "mqtt"], sector: str, device: str,
                 policy: Policy | None = None, monitor: Observer | None = None,
                 command_topics: tuple[str, ...] = COMMAND_TOPICS, refuse_code: int = ILLEGAL_FUNCTION,
                 connect_timeout_s: float = 5.0) -> None:
        if protocol not in ("modbus", "mqtt"):
            raise GatewayError(f"protocol {protocol!r}: a gateway speaks 'modbus' or 'mqtt'")
        self.upstream = (upstream_host, upstream_port)
        self.listen = (listen_host, listen_port)
        self.protocol: Literal["modbus", "mqtt"] = protocol
        self.sector, self.device = str(sector), device
        self.policy = policy if policy is not None else Policy()
        self.monitor: Observer = monitor if monitor is not None else _Nobody()
        self.command_topics = command_topics
        self.refuse_code = refuse_code
        self.connect_timeout_s = connect_timeout_s
        self._thread = LoopThread(f"gateway-{protocol}-{device}")
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._numbers = itertools.count(1)
        self.refused = 0  # refusals of any kind, for reports

    @property
    def id(self) -> str:
        return f"{self.protocol}:{self.device}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise GatewayError(f"gateway {self.id} is not running")
        return self._port

    # --- life --------------------------------------------------------------------------------------

    def start(self, timeout_s: float = 5.0) -> Self:
        if self._server is not None:
            return self
        self._thread.start()

        async def boot() -> asyncio.Server:
            return await asyncio.start_server(self._handle, *self.listen, reuse_address=True)

        try:
            self._server = self._thread.run(boot(), timeout_s)
        except (OSError, GatewayError) as exc:
            self._thread.stop(timeout_s)
            raise GatewayError(f"gateway {self.id} could not listen on {self.listen[0]}:{self.listen[1]}: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is not None:
            async def close() -> None:
                server.close()
            with contextlib.suppress(GatewayError):
                self._thread.run(close(), timeout_s)
            self._thread.stop(timeout_s)
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- one connection ------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else "?"
        conn = _Conn(next(self._numbers), Source(address), *self._streams(), writer)
        entry = self.policy.denied(conn.source)
        if entry is not None:
            self._refuse(conn, f"source denied ({entry.address})")
            await _close(writer)
            return
        self._emit(conn, "open")
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream),
                                                          self.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            self._emit(conn, "close", reason=f"upstream unreachable: {exc}")
            await _close(writer)
            return
        tasks = {asyncio.create_task(self._requests(conn, reader, up_writer)),
                 asyncio.create_task(self._responses(conn, up_reader))}
        reason = "closed"
        try:
            while True:
                done, _ = await asyncio.wait(tasks, timeout=SWEEP_S, return_when=asyncio.FIRST_COMPLETED)
                if done:
                    reason = _ended(next(iter(done)))
                    break
                entry = self.policy.denied(conn.source)
                if entry is not None:
                    self._refuse(conn, f"source denied while connected ({entry.address})")
                    reason = "denied"
                    break
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await _close(up_writer)
            await _close(writer)
            self._emit(conn, "close", reason=reason)

    def _streams(self) -> tuple[ModbusStream | MqttStream, ModbusStream | MqttStream]:
        if self.protocol == "modbus":
            return ModbusStream("request"), ModbusStream("response")
        return MqttStream(), MqttStream()

    async def _requests(self, conn: _Conn, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> str:
        """Client to device: parse, judge, forward whole frames; returns why it ended."""
        while True:
            chunk = await reader.read(READ_SIZE)
            if not chunk:
                return "client closed"
            wall, mono = datetime.now(UTC), time.monotonic()
            try:
                frames = conn.requests.feed(chunk)
            except FrameError as exc:
                self._emit(conn, "malformed", direction="request", reason=str(exc), wall=wall, mono=mono)
                return "malformed request"
            for frame, raw in frames:
                ended = self._request(conn, frame, raw, upstream, wall, mono)
                if ended is not None:
                    await _flush(conn.writer)
                    return ended
            await upstream.drain()
            await _flush(conn.writer)

    def _request(self, conn: _Conn, frame: ModbusFrame | MqttPacket, raw: bytes, upstream: asyncio.StreamWriter,
                 wall: datetime, mono: float) -> str | None:
        """One request frame: forward it or refuse it; a reason string if the connection must end."""
        write = self._is_write(frame)
        if isinstance(frame, MqttPacket) and frame.type == CONNECT:
            conn.source = replace(conn.source, client_id=frame.client_id, username=frame.username)
            if isinstance(conn.responses, MqttStream):
                conn.responses.level = frame.level
            entry = self.policy.denied(conn.source)
            if entry is not None:
                self._emit(conn, "frame", direction="request", frame=frame, raw=raw, action="refused",
                           reason="source denied", wall=wall, mono=mono)
                self.refused += 1
                conn.writer.write(connack_refused(frame.level))
                return "denied at CONNECT"
        why = self.policy.refuses_writes(self.device, self.id) if write else None
        self._emit(conn, "frame", direction="request", frame=frame, raw=raw, write=write,
                   action="refused" if why else "pass", reason=why or "", wall=wall, mono=mono)
        if why is None:
            upstream.write(raw)
            return None
        self.refused += 1
        if isinstance(frame, ModbusFrame):
            conn.writer.write(exception_response(frame, self.refuse_code))
            return None
        return f"write refused ({why})"

    async def _responses(self, conn: _Conn, reader: asyncio.StreamReader) -> str:
        """Device to client: parse and forward whole frames; returns why it ended."""
        while True:
            chunk = await reader.read(READ_SIZE)
            if not chunk:
                return "upstream closed"
            wall, mono = datetime.now(UTC), time.monotonic()
            try:
                frames = conn.responses.feed(chunk)
            except FrameError as exc:
                self._emit(conn, "malformed", direction="response", reason=str(exc), wall=wall, mono=mono)
                return "malformed response"
            for frame, raw in frames:  # observed before forwarded: the monitor never lags the client
                self._emit(conn, "frame", direction="response", frame=frame, raw=raw, wall=wall, mono=mono)
                conn.writer.write(raw)
            await conn.writer.drain()

    def _is_write(self, frame: ModbusFrame | MqttPacket) -> bool:
        if isinstance(frame, ModbusFrame):
            return frame.is_write
        return frame.type == PUBLISH and frame.topic is not None and any(
            topic_matches(p, frame.topic) for p in self.command_topics)

    # --- observations ------------------------------------------------------------------------------

    def _refuse(self, conn: _Conn, reason: str) -> None:
        self.refused += 1
        self._emit(conn, "refused", action="refused", reason=reason)

    def _emit(self, conn: _Conn, kind: Kind, *, direction: Literal["request", "response", "none"] = "none",
              frame: ModbusFrame | MqttPacket | None = None, raw: bytes | None = None, write: bool = False,
              action: Literal["pass", "refused"] = "pass", reason: str = "", wall: datetime | None = None,
              mono: float | None = None) -> None:
        obs = Observation(kind=kind, protocol=self.protocol, sector=self.sector, device=self.device,
                          source=conn.source, connection=conn.number, wall=wall or datetime.now(UTC),
                          mono=time.monotonic() if mono is None else mono, direction=direction, frame=frame,
                          digest=None if raw is None else frame_hash(_evidence(frame, raw)), write=write, action=action,
                          reason=reason)
        try:
            self.monitor.observe(obs)
        except Exception:  # an observer's bug must not take the device path down with it
            log.exception("gateway %s: observer failed on a %s observation", self.id, kind)


def _evidence(frame: ModbusFrame | MqttPacket | None, raw: bytes) -> bytes:
    """The bytes a frame's evidence hash covers: all of them, but a CONNECT's password."""
    return without_secret(frame, raw) if isinstance(frame, MqttPacket) else raw


def _ended(task: asyncio.Task[str]) -> str:
    """Why a pump ended: its own reason, or the connection error that ended it."""
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    return task.result() if exc is None else f"connection lost: {exc.__class__.__name__}"


async def _flush(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        await writer.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError, asyncio.CancelledError):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 1.0)
