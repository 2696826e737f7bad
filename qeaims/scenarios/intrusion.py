"""`qeaims scenario run intrusion`: attacks on three sectors' device paths, seen on the wire, decided by quorum,
shared as indicators, and blocked in a sector the attacker had not touched yet.

Self-contained (no `qeaims up` needed): a private Anvil with the development consortium, and per
sector (banking, water, electricity) a Modbus TCP device (the pymodbus simulator) behind a gateway
(`gateway.Gateway`), its normal clients (a poller that reads, a SCADA that sets a setpoint, an
engineering laptop that does maintenance), each bound to a loopback address of its own as it would
have its own IP on a plant network. The sector's four oracles each watch the gateway's mirror with
a monitor of their own (`oracles.wire.WireOracle`) and record what they see; the controller
publishes an indicator once a sector's quorum named it; every sector's gateway enforces what is in
force on the chain (`intel.feed.IndicatorFeed` + `intel.enforce.gateway_enforcer`).

What it plays, after a training window (profiles learnt, the engineering laptop declared for
maintenance) and a clean window (normal traffic plus a maintenance read-out and firmware-identity
queries, FC 43/14 and 17: any detection there is a false positive):

1. **scan**: an attacker scans banking's PLC (unknown client, register scan);
2. **stolen identity**: from water's engineering laptop (an identity that only ever reads) the
   attacker writes the pump's protection register (dry-run trip pressure): a function outside the
   client's profile;
3. **cross-sector**: the same client tries electricity's feeder relay, whose gateway must already
   refuse it from the indicator water published;
4. **replay**: a captured SCADA write to water's pump is replayed from another connection;
5. **rate**: electricity's HMI floods the relay with reads far beyond its profiled rate;
6. **authentication burst**: password guessing against healthcare's broker path (a real Mosquitto with a
   password file behind an MQTT gateway; skipped, and said so, where Mosquitto is not installed).

After step 2 the attacked pump is quarantined at its gateway (the controller's countermeasure: commands
refused, readings flowing) and the control room lifts it after the repair (step 2b).

An indicator of an address denies every client of that address in every sector: after the replay,
water's real SCADA is refused too (its address is the identity the attacker used), and after the
flood, electricity's HMI. That is what an address-level indicator means; the scenario reports the
refusals of normal traffic it caused in ``notes``.

Times are wall seconds and also the field seconds the issue compares them with: device protocols run
in real time here (nothing is sped up). The publication time of an indicator is when a watcher saw
its event on the chain (polling every 50 ms), and its enforcement in a sector is when that sector's
feed applied it at its gateway.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import ModbusTcpClient

from bus.mosquitto import MosquittoBroker, mosquitto_executable
from chain.client import ChainClient, _normalise_log
from chain.deploy import deploy_dev_consortium, dev_controller, dev_oracle
from chain.logs import LogReader
from chain.manifest import Deployment
from chain.node import start_anvil, stop_anvil
from chain.outbox import EventOutbox
from chain.recorder import EventRecorder, canonical_payload
from controller.commander import Commander
from controller.node import Controller
from controller.planning import TwinPlanner
from core.config import Settings, load_settings
from core.errors import QeaimsError
from core.kinds import kind_by_name
from core.messages import Sector
from gateway import ATTACK_CLASSES, Gateway, Maintenance, ObservationLog, Policy, Profile, Tee
from intel.enforce import gateway_enforcer
from intel.feed import IndicatorFeed
from keys.ids import to_bytes32
from oracles.ingest.modbus import ModbusDeviceSimulator
from oracles.ingest.registers import PUMP_MAP, DeviceMap, RegisterPoint, read_blocks
from oracles.wire import Recorded, WireOracle

__all__ = ["IntrusionResult", "run_intrusion"]

SECTORS = ("banking", "water", "electricity", "healthcare")
MODBUS_SECTORS = SECTORS[:3]
PROTECTION = 3  # the holding register of each device's protection setting
ORACLES = 4
_INDICATOR = kind_by_name("indicator")
_COUNTERMEASURE = kind_by_name("countermeasure")


def _device(sector: str, asset: str, protection: str) -> DeviceMap:
    """A small RTU: the reference map's points, plus a protection setting at holding register 3."""
    return DeviceMap(sector=Sector(sector), asset_id=asset, device_id=1, points=(
        *PUMP_MAP.points,
        RegisterPoint(sensor_id=protection, quantity="setting", unit="", table="holding", address=PROTECTION,
                      dtype="uint16")))


DEVICES = {"banking": _device("banking", "dc-cooling-plc", "chiller-trip-temp"),
           "water": _device("water", "pump-station-1", "dry-run-trip-pressure"),
           "electricity": _device("electricity", "feeder-relay-7", "overcurrent-pickup")}


def _ip(sector: str, host: int) -> str:
    return f"127.0.{SECTORS.index(sector) + 1}.{host}"


POLLER, SCADA, ENGINEER, ATTACKER = 2, 3, 9, 66


def _client(port: int, ip: str, **kw: Any) -> ModbusTcpClient:
    c = ModbusTcpClient("127.0.0.1", port=port, source_address=(ip, 0), timeout=2, retries=0, **kw)
    if not c.connect():  # type: ignore[no-untyped-call]
        raise QeaimsError(f"no connection to the gateway on port {port} from {ip}")
    return c


@dataclass
class _Site:
    sector: str
    device: DeviceMap
    sim: ModbusDeviceSimulator
    gateway: Gateway
    policy: Policy
    oracles: list[WireOracle] = field(default_factory=list)
    feed: IndicatorFeed | None = None


class _Normal:
    """A sector's normal day: the poller reads every block every 0.1 s, the SCADA sets the setpoint every 0.5 s."""

    def __init__(self, site: _Site) -> None:
        self.site = site
        self._stop = threading.Event()
        self.errors: list[str] = []
        self._threads = [threading.Thread(target=self._run, args=(POLLER, 0.1, self._poll), daemon=True),
                         threading.Thread(target=self._run, args=(SCADA, 0.5, self._write), daemon=True)]

    def _poll(self, c: ModbusTcpClient) -> None:
        for table, start, count, _ in read_blocks(self.site.device):
            call = c.read_input_registers if table == "input" else c.read_holding_registers
            call(start, count=count, device_id=1)

    def _write(self, c: ModbusTcpClient) -> None:
        c.write_register(0, 1480, device_id=1)

    def _run(self, host: int, every: float, act: Callable[[ModbusTcpClient], None]) -> None:
        ip = _ip(self.site.sector, host)
        c: ModbusTcpClient | None = None
        while not self._stop.is_set():
            try:
                if c is None:
                    c = _client(self.site.gateway.port, ip)
                act(c)
            except Exception as exc:  # noqa: BLE001 - a denied client reconnects; the error is reported
                self.errors.append(f"{ip}: {exc}"[:200])
                if c is not None:
                    c.close()  # type: ignore[no-untyped-call]
                c = None
            self._stop.wait(every)
        if c is not None:
            c.close()  # type: ignore[no-untyped-call]

    def start(self) -> _Normal:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)


def _maintenance(site: _Site) -> None:
    """The engineering laptop's legitimate visit: a register-by-register read-out and identity queries."""
    c = _client(site.gateway.port, _ip(site.sector, ENGINEER))
    try:
        for address in range(8):
            c.read_input_registers(address, count=1, device_id=1)
        for address in range(4):
            c.read_holding_registers(address, count=1, device_id=1)
        c.read_device_information(device_id=1)  # FC 43/14: the firmware's identity
        c.report_device_id(device_id=1)  # FC 17
    finally:
        c.close()  # type: ignore[no-untyped-call]


class _PasswordBroker(MosquittoBroker):
    """Mosquitto with passwords required, as a site runs it (a password file made by mosquitto_passwd)."""

    def __init__(self, *, password_file: Path, **kw: Any) -> None:
        super().__init__(**kw)
        self.password_file = password_file

    def config(self) -> str:
        return super().config().replace("allow_anonymous true",
                                        f"allow_anonymous false\npassword_file {self.password_file}")


MQTT_SECTOR, MQTT_DEVICE = "healthcare", "broker-healthcare"
MQTT_USERS = {"ward-gw": "pw-ward-gw-7", "oracle": "pw-oracle-3"}


def _mqtt_connect(client_id: str, username: str, password: str) -> bytes:
    """An MQTT 3.1.1 CONNECT (clean session, user name and password), as bytes on the wire."""
    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack(">H", len(data)) + data

    body = string("MQTT") + bytes([4, 0b11000010]) + struct.pack(">H", 30) + string(client_id) + string(username) \
        + string(password)
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            return bytes([0x10]) + bytes(encoded) + body


class _MqttSite:
    """Healthcare's broker path: Mosquitto with passwords behind an MQTT gateway; a ward gateway publishes
    telemetry every 0.1 s and the sector's oracle subscribes, each from its own address."""

    def __init__(self, home: Path) -> None:
        passwords = home / "mqtt-passwords"
        for i, (user, password) in enumerate(MQTT_USERS.items()):
            subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(passwords), user, password],
                           check=True, capture_output=True, timeout=30)
        passwords.chmod(0o600)
        self.broker = _PasswordBroker(port=_free_port(), data_dir=home / "mqtt-broker", password_file=passwords)
        self.broker.start()
        self.policy = Policy()
        self.log = ObservationLog()
        self.gateway = Gateway("127.0.0.1", self.broker.port, protocol="mqtt", sector=MQTT_SECTOR,
                               device=MQTT_DEVICE, policy=self.policy, monitor=self.log).start()
        self.oracles: list[WireOracle] = []
        self.feed: IndicatorFeed | None = None
        self._stop = threading.Event()
        self._clients: list[paho.Client] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _client(self, ip: str, client_id: str, user: str) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        c.username_pw_set(user, MQTT_USERS[user])
        c.connect("127.0.0.1", self.gateway.port, keepalive=30, bind_address=ip)
        c.loop_start()
        self._clients.append(c)
        return c

    def start(self) -> _MqttSite:
        oracle = self._client(_ip(MQTT_SECTOR, 4), "oracle-healthcare-1", "oracle")
        oracle.subscribe("qeaims/healthcare/+/+", qos=1)
        self.ward = self._client(_ip(MQTT_SECTOR, POLLER), "ward-gw-7", "ward-gw")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.ward.publish("qeaims/healthcare/_batch/ward-gw-7", b'[{"asset":"icu-3","sensor":"beds","value":9}]',
                              qos=1)
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self._clients:
            c.disconnect()
            c.loop_stop()
        self.gateway.stop()
        self.broker.stop()


@dataclass
class IntrusionResult:
    attacks: dict[str, dict[str, Any]]
    false_positives: int
    propagation_s: list[float]
    cross_sector_blocked: bool
    indicators: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    clean_window_s: float
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        p95 = sorted(self.propagation_s)[max(0, int(0.95 * len(self.propagation_s)) - 1)] if self.propagation_s else None
        return {
            "attacks": self.attacks, "false_positives": self.false_positives,
            "propagation_p95_s": None if p95 is None else round(p95, 3),
            "propagation_max_s": round(max(self.propagation_s), 3) if self.propagation_s else None,
            "propagation_samples": len(self.propagation_s), "cross_sector_blocked": self.cross_sector_blocked,
            "indicators": self.indicators, "steps": self.steps, "clean_window_s": self.clean_window_s,
            "time_unit": "seconds (wall = field: the device protocols run in real time here)", "notes": self.notes,
        }


class _PublicationWatch:
    """When each indicator's publication was first on the chain (polled every 50 ms)."""

    def __init__(self, client: ChainClient, max_logs_range: int) -> None:
        self.client = client
        self.reader = LogReader(client.rpc, max_logs_range)  # pages the node accepts (`chain.logs`)
        self.seen: dict[str, float] = {}  # id → wall time first seen
        self.bodies: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._next = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        abi = self.client.abi("EventLedger")
        topic = ["0x" + abi.topic("EventRecorded").hex(), None, None, "0x" + _INDICATOR.to_bytes(32, "big").hex()]
        while not self._stop.is_set():
            head = int(self.client.rpc.call("eth_blockNumber"), 16)
            if head >= self._next:
                for log in self.reader.get({"address": self.client.address("EventLedger"), "topics": topic},
                                           self._next, head):
                    decoded = abi.decode_log(_normalise_log(log))
                    body = json.loads(bytes(decoded.args["payload"])) if decoded is not None else {}
                    if body.get("state") == "published" and body.get("id") not in self.seen:
                        self.seen[str(body["id"])] = time.time()
                        self.bodies[str(body["id"])] = body
                self._next = head + 1
            self._stop.wait(0.05)

    def start(self) -> _PublicationWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def run_intrusion(*, train_s: float = 4.0, clean_s: float = 6.0, step_timeout_s: float = 20.0,
                  progress: Callable[[str], None] | None = None) -> IntrusionResult:
    say = progress or (lambda _m: None)
    with tempfile.TemporaryDirectory(prefix="qeaims-intrusion-") as home:
        settings = load_settings(home=Path(home), rpc_port=_free_port(), scrypt_n=1024)
        start_anvil(settings)
        try:
            say("deploying the development consortium on a private chain")
            client, deployment = deploy_dev_consortium(settings)
            return _play(settings, client, deployment, train_s=train_s, clean_s=clean_s,
                         step_timeout_s=step_timeout_s, say=say)
        finally:
            stop_anvil(settings)


def _play(settings: Settings, client: ChainClient, deployment: Deployment, *, train_s: float, clean_s: float,
          step_timeout_s: float, say: Callable[[str], None]) -> IntrusionResult:
    sites: dict[str, _Site] = {}
    mqtt: _MqttSite | None = None
    normals: list[_Normal] = []
    recorded: list[Recorded] = []
    lock = threading.Lock()
    notes: list[str] = []
    controller: Controller | None = None
    stop_controller = threading.Event()
    watch = _PublicationWatch(client, settings.max_logs_range).start()
    try:
        say("starting devices, gateways and their normal traffic")
        logs: dict[str, ObservationLog] = {}
        mqtt = _MqttSite(settings.home).start() if mosquitto_executable() else None
        if mqtt is None:
            notes.append("Mosquitto is not installed: the MQTT authentication burst was not played (make system)")
        for sector in MODBUS_SECTORS:
            device = DEVICES[sector]
            sim = ModbusDeviceSimulator(device, port=_free_port()).start()
            policy = Policy()
            logs[sector] = ObservationLog()
            gw = Gateway("127.0.0.1", sim.port, protocol="modbus", sector=sector, device=device.asset_id,
                         policy=policy, monitor=logs[sector]).start()
            sites[sector] = _Site(sector, device, sim, gw, policy)
            normals.append(_Normal(sites[sector]).start())
        time.sleep(train_s)
        say("learning each device's profile from the training window")
        profiles = {s: Profile.learn(logs[s].snapshot(), window_s=0.5,
                                     maintenance=[Maintenance(client=_ip(s, ENGINEER), note="engineering laptop")])
                    for s in MODBUS_SECTORS}
        if mqtt is not None:
            profiles[MQTT_SECTOR] = Profile.learn(mqtt.log.snapshot(), window_s=0.5)

        def on_recorded(r: Recorded) -> None:
            with lock:
                recorded.append(r)

        watched: list[_Site | _MqttSite] = [*sites.values(), *([mqtt] if mqtt is not None else [])]
        for site in watched:
            sector = site.gateway.sector
            for index in range(1, ORACLES + 1):
                identity = dev_oracle(settings, sector, index)
                outbox = EventOutbox.for_oracle(settings.outbox_dir, identity.address, deployment.deployment_id)
                site.oracles.append(WireOracle(EventRecorder(client, identity, outbox), [profiles[sector]],
                                               on_recorded=on_recorded).run())
            site.gateway.monitor = Tee(*site.oracles)
            site.feed = IndicatorFeed(client, deployment, settings.home / f"feed-{sector}.sqlite", interval_s=0.25,
                                      max_logs_range=settings.max_logs_range)
            # one host, one address space: every sector's 127.0.x.y is the same machine (docs/cyber.md)
            site.feed.add(gateway_enforcer(sector, site.policy, sector=sector, shared_network=True))
            site.feed.run()
        controller = Controller(settings=settings, client=client, deployment=deployment,
                                identity=dev_controller(settings), commander=Commander(port=1),
                                planner=TwinPlanner(), speed=1.0)
        ctl = controller

        def control() -> None:
            while not stop_controller.is_set():
                try:
                    ctl.run_once()
                except QeaimsError as exc:
                    notes.append(f"controller: {exc}"[:200])
                stop_controller.wait(0.1)

        control_thread = threading.Thread(target=control, daemon=True)
        control_thread.start()

        say(f"clean window: {clean_s:g} s of normal traffic with a maintenance visit in every sector")
        clean_from = time.monotonic()
        for site in sites.values():
            _maintenance(site)
        time.sleep(clean_s)
        time.sleep(1.0)  # what the clean window detected has reached the chain
        with lock:
            false_positives = len({(r.detection.attack, r.detection.device, r.detection.source) for r in recorded
                                   if r.detection.first_seen_mono >= clean_from})
        steps: list[dict[str, Any]] = []
        attacks: dict[str, dict[str, Any]] = {}

        def step(name: str, act: Callable[[], Any], expect: tuple[str, ...], sector: str) -> float:
            say(name)
            began = time.monotonic()
            outcome = act()
            found: dict[str, Recorded] = {}

            def seen() -> bool:
                with lock:
                    for r in recorded:
                        d = r.detection
                        if d.sector == sector and d.attack in expect and d.detected_mono >= began:
                            found.setdefault(d.attack, r if d.attack not in found else min(
                                found[d.attack], r, key=lambda x: x.confirmed_mono))
                return all(a in found for a in expect)

            _wait(seen, step_timeout_s)
            for attack in expect:
                r = found.get(attack)
                entry = attacks.setdefault(attack, {"attempts": 0, "detected": 0, "field_s": []})
                entry["attempts"] += 1
                if r is not None:
                    entry["detected"] += 1
                    entry["field_s"].append(round(r.to_chain_s, 3))
            steps.append({"step": name, "sector": sector, "expected": list(expect),
                          "detected": sorted(found), "outcome": outcome})
            return began

        scan_ip, engineer_ip = _ip("banking", ATTACKER), _ip("water", ENGINEER)

        def scan() -> str:
            c = _client(sites["banking"].gateway.port, scan_ip)
            try:
                for address in range(60):
                    c.read_input_registers(address, count=1, device_id=1)
            finally:
                c.close()  # type: ignore[no-untyped-call]
            return "60 addresses probed"

        step("1. scan: an unknown client scans banking's PLC", scan, ("unknown-client", "register-scan"), "banking")
        enforced_everywhere(sites, scan_ip, step_timeout_s)

        def stolen_write() -> str:
            c = _client(sites["water"].gateway.port, engineer_ip)
            try:
                answer = c.write_register(PROTECTION, 0, device_id=1)
            finally:
                c.close()  # type: ignore[no-untyped-call]
            return "written" if not answer.isError() else "refused by the device"

        step("2. stolen identity: water's engineering laptop writes the pump's protection setting", stolen_write,
             ("unprofiled-function",), "water")
        blocked_in_time = enforced_everywhere(sites, engineer_ip, step_timeout_s)
        steps.append(_device_quarantine(settings, client, deployment, sites["water"], step_timeout_s, say))

        relay = sites["electricity"]
        relay.sim.set_registers("holding", PROTECTION, [400])

        def cross_sector() -> str:
            try:
                c = _client(relay.gateway.port, engineer_ip)
            except QeaimsError:
                return "refused at connect"
            try:
                answer = c.write_register(PROTECTION, 9999, device_id=1)
                return "refused" if answer.isError() else "WRITTEN"
            except Exception as exc:  # noqa: BLE001 - the gateway closing the connection is the refusal
                return f"refused ({type(exc).__name__})"
            finally:
                c.close()  # type: ignore[no-untyped-call]

        say("3. cross-sector: the same client against electricity's feeder relay")
        outcome = cross_sector()
        time.sleep(0.3)
        held = relay.sim.registers("holding", PROTECTION, 1) == [400]
        cross_blocked = blocked_in_time and outcome != "WRITTEN" and held
        steps.append({"step": "3. cross-sector: the same client against electricity's feeder relay",
                      "sector": "electricity", "outcome": outcome, "setting_unchanged": held,
                      "indicator_enforced_before": blocked_in_time})

        captured: list[bytes] = []

        def replay() -> str:
            def capture(sending: bool, data: bytes) -> bytes:
                if sending:
                    captured.append(data)
                return data

            scada = _client(sites["water"].gateway.port, _ip("water", SCADA), trace_packet=capture)
            scada.write_register(0, 1490, device_id=1)
            scada.close()  # type: ignore[no-untyped-call]
            time.sleep(0.1)
            with socket.create_connection(("127.0.0.1", sites["water"].gateway.port),
                                          source_address=(_ip("water", SCADA), 0), timeout=2) as attacker:
                attacker.sendall(captured[-1])
                attacker.recv(260)
            return "one captured write sent again"

        step("4. replay: a captured SCADA write to water's pump, sent again", replay, ("replay",), "water")

        def flood() -> str:
            c = _client(relay.gateway.port, _ip("electricity", POLLER))
            sent = 0
            deadline = time.monotonic() + 3
            try:
                while time.monotonic() < deadline and sent < 2000:
                    c.read_input_registers(0, count=7, device_id=1)
                    sent += 1
            except Exception as exc:  # noqa: BLE001 - the gateway may close it once denied
                return f"{sent} reads, then {type(exc).__name__}"
            finally:
                c.close()  # type: ignore[no-untyped-call]
            return f"{sent} reads"

        step("5. rate: electricity's HMI floods the relay", flood, ("rate",), "electricity")

        if mqtt is not None:
            site_mqtt = mqtt

            def guesses() -> str:
                refused = 0
                for i in range(6):  # guessing the ward gateway's password
                    with socket.create_connection(("127.0.0.1", site_mqtt.gateway.port),
                                                  source_address=(_ip(MQTT_SECTOR, ATTACKER), 0), timeout=3) as s:
                        s.sendall(_mqtt_connect("ward-gw-7", "ward-gw", f"guess-{i}"))
                        answer = s.recv(4)
                        refused += len(answer) == 4 and answer[3] != 0
                return f"{refused} of 6 logins refused by the broker"

            step("6. authentication burst: password guessing against healthcare's broker", guesses, ("auth-burst",),
                 MQTT_SECTOR)
        time.sleep(1.0)
        propagation = _propagation(watch, sites)
        indicators = [{"kind": b["kind"], "value": b["value"], "source_sector": b["source_sector"],
                       "confidence": b["confidence"], "evidence": len(b["evidence"])}
                      for b in watch.bodies.values()]
        for attack in ATTACK_CLASSES:
            if attack not in attacks:
                attacks[attack] = {"attempts": 0, "detected": 0, "field_s": [],
                                   "note": "not played: Mosquitto is not installed here"}
        for entry in attacks.values():
            entry["detected_pct"] = round(100.0 * entry["detected"] / entry["attempts"], 1) if entry["attempts"] else None
            entry["field_s_max"] = max(entry["field_s"]) if entry["field_s"] else None
        for n in normals:
            notes += [f"normal traffic: {e}" for e in n.errors[:3]]
        return IntrusionResult(attacks=attacks, false_positives=false_positives,
                               propagation_s=propagation, cross_sector_blocked=cross_blocked, indicators=indicators,
                               steps=steps, clean_window_s=clean_s, notes=notes)
    finally:
        stop_controller.set()
        watch.stop()
        for n in normals:
            n.stop()
        every: list[_Site | _MqttSite] = [*sites.values(), *([mqtt] if mqtt is not None else [])]
        for any_site in every:
            if any_site.feed is not None:
                any_site.feed.stop()
            for o in any_site.oracles:
                o.stop()
                o.recorder.outbox.close()
        for site in sites.values():
            site.gateway.stop()
            site.sim.stop()
        if mqtt is not None:
            mqtt.stop()
        if controller is not None:
            controller.close()


def _device_quarantine(settings: Settings, client: ChainClient, deployment: Deployment, site: _Site,
                       timeout_s: float, say: Callable[[str], None]) -> dict[str, Any]:
    """The countermeasure that follows a command attack: the pump refuses commands (its readings still flow)
    until the control room lifts it after the repair."""
    say("2b. countermeasure: water's pump refuses commands until repaired")
    gw, device = site.gateway, site.device.asset_id
    quarantined = _wait(lambda: site.policy.refuses_writes(device, gw.id) is not None, timeout_s)
    measures = [i for e in (site.feed.enforcers if site.feed else []) for i in e.measures]
    scada, poller = _client(gw.port, _ip(site.sector, SCADA)), _client(gw.port, _ip(site.sector, POLLER))
    try:  # each client does only what it always does: the SCADA writes its setpoint, the poller reads
        write_refused = scada.write_register(0, 1470, device_id=1).isError()
        reads_pass = not poller.read_input_registers(0, count=7, device_id=1).isError()
    finally:
        scada.close()  # type: ignore[no-untyped-call]
        poller.close()  # type: ignore[no-untyped-call]
    say("2c. the control room lifts it after the repair")
    identity = dev_controller(settings)
    outbox = EventOutbox.for_oracle(settings.outbox_dir, identity.address, deployment.deployment_id)
    try:
        for ident in measures:
            EventRecorder(client, identity, outbox).record(_COUNTERMEASURE, to_bytes32(site.sector), canonical_payload(
                {"state": "lifted", "id": ident, "reason": "pump re-imaged, engineering credentials re-issued"}))
    finally:
        outbox.close()
    lifted = _wait(lambda: site.policy.refuses_writes(device, gw.id) is None, timeout_s)
    scada = _client(gw.port, _ip(site.sector, SCADA))
    try:
        write_passes = not scada.write_register(0, 1475, device_id=1).isError()
    finally:
        scada.close()  # type: ignore[no-untyped-call]
    return {"step": "2b. countermeasure: water's pump quarantined, then lifted by the control room",
            "sector": site.sector, "countermeasures": measures, "quarantined": quarantined,
            "write_refused": write_refused, "reads_pass": reads_pass, "lifted": lifted,
            "write_passes_after_lift": write_passes,
            "outcome": "commands refused, readings flowing, then commands again after the lift"
            if quarantined and write_refused and reads_pass and lifted and write_passes else "NOT AS EXPECTED"}


def enforced_everywhere(sites: dict[str, _Site], ip: str, timeout_s: float) -> bool:
    """Whether every sector's gateway denies ``ip`` within ``timeout_s``."""
    from gateway import Source

    return _wait(lambda: all(s.policy.denied(Source(ip)) is not None for s in sites.values()), timeout_s)


def _propagation(watch: _PublicationWatch, sites: dict[str, _Site]) -> list[float]:
    """Per indicator and per sector other than its source: publication on-chain → applied at that gateway."""
    out: list[float] = []
    for ident, seen in watch.seen.items():
        source = watch.bodies[ident].get("source_sector")
        for sector, site in sites.items():
            if sector == source or site.feed is None:
                continue
            for enforcer in site.feed.enforcers:
                if ident in enforcer.applied:
                    out.append(max(0.0, enforcer.applied[ident] - seen))
    return out


def summary_table_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for attack, entry in sorted(result["attacks"].items()):
        field_s = entry.get("field_s_max")
        rows.append((attack, "-" if entry["detected_pct"] is None else f"{entry['detected_pct']:.0f} %",
                     "-" if field_s is None else f"{field_s:.3f} s"))
    return rows

