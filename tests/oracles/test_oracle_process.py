"""`qeaims oracle` as a real process, fed by a twin over MQTT: kill it and the chain, lose nothing.

The banking twin publishes through the embedded broker exactly as a field gateway would; the
oracle process ingests, anchors and judges. Mid-fault, the chain is killed (so nothing can reach
it), then the oracle is SIGKILLed after it stored the readings and wrote its verdict ahead. After
both restart, every published reading is anchored exactly once and every verdict is on-chain once.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bus.mqtt import EmbeddedBroker
from chain.node import start_anvil, stop_anvil
from core.messages import FaultKind, Sector
from oracles.node import VERDICT_KINDS
from oracles.telemetry import telemetry_path
from oracles.training import save_model, train_sector
from sectors.publish import TwinPublisher
from sectors.runner import open_twin
from tests.conftest import free_port
from tests.oracles.test_oracle_node import ledger_events
from tests.support import oracle, wait_journaled, wait_until


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    wait_until(check, timeout_s, what=what, interval_s=0.05)


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def start_oracle(chain, model: Path, mqtt_port: int, log: Path) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    out = open(log, "ab")  # noqa: SIM115 - handed to the child
    child = subprocess.Popen(
        [sys.executable, "-m", "qeaims", "oracle", "--sector", "banking", "--index", "1", "--mqtt-port",
         str(mqtt_port), "--model", str(model), "--batch-size", "64", "--anchor-age", "0.5"],
        env=chain.env, stdout=out, stderr=subprocess.STDOUT)
    starts = log.read_text().count("oracle-started") if log.exists() else 0
    wait_for("the oracle to start", lambda: log.read_text().count("oracle-started") > starts
             or child.poll() is not None, timeout_s=90)
    assert child.poll() is None, log.read_text()[-2000:]
    return child


def test_oracle_process_survives_kill_of_itself_and_the_chain_exactly_once(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    model = train_sector(Sector.BANKING, rows=240)
    model_file = tmp_path / "banking.joblib"
    save_model(model, model_file)
    me = oracle(chain.settings, "banking", 1).address
    store = telemetry_path(chain.settings.home, me)
    outbox = chain.settings.outbox_dir / chain.deployment.deployment_id / f"{me.lower()}.sqlite"
    verdict_kinds = ",".join(str(k) for k in VERDICT_KINDS.values())
    log = tmp_path / "oracle.log"
    port = free_port()

    def on_chain_readings() -> int:
        return sum(int(p["count"]) for o, _, p in ledger_events(chain, "telemetry-root") if o.lower() == me.lower())

    with EmbeddedBroker(port=port), open_twin(Sector.BANKING, seed=11) as twin, \
            TwinPublisher(twin, port=port, client_id="gateway-banking") as gateway:
        proc = start_oracle(chain, model_file, port, log)
        try:
            for _ in range(30):
                gateway.publish(twin.advance())
            wait_for("normal readings anchored", lambda: on_chain_readings() == gateway.published)

            wait_journaled(chain.settings)
            stop_anvil(chain.settings, hard=True)  # the chain dies first: nothing more can reach it
            twin.twin.inject_fault(FaultKind.OUTAGE, "dc-primary")
            for _ in range(12):
                gateway.publish(twin.advance())
            wait_for("the faulty readings stored", lambda: count(store, "SELECT COALESCE(SUM(count), 0) FROM chunks")
                     == gateway.published)
            wait_for("a verdict written ahead", lambda: count(
                outbox, f"SELECT COUNT(*) FROM events WHERE kind IN ({verdict_kinds})") >= 1)
            proc.send_signal(signal.SIGKILL)  # and then the oracle, with its verdict not on-chain
            proc.wait()
            ahead = count(outbox, f"SELECT COUNT(*) FROM events WHERE kind IN ({verdict_kinds})")
            for _ in range(3):  # the devices keep publishing while the oracle is down: its session keeps them
                gateway.publish(twin.advance())

            start_anvil(chain.settings)
            chain.reconnect()
            proc = start_oracle(chain, model_file, port, log)
            for _ in range(5):
                gateway.publish(twin.advance())
            wait_for("every reading anchored after the restarts", lambda: on_chain_readings() == gateway.published,
                     timeout_s=90)
            verdicts = [e for k in VERDICT_KINDS for e in ledger_events(chain, k.value) if e[0].lower() == me.lower()]
            wait_for("the verdicts on-chain", lambda: len(
                [e for k in VERDICT_KINDS for e in ledger_events(chain, k.value) if e[0].lower() == me.lower()]) >= ahead)
            verdicts = [e for k in VERDICT_KINDS for e in ledger_events(chain, k.value) if e[0].lower() == me.lower()]
            episodes = [p["episode"] for _, _, p in verdicts]
            assert len(episodes) == len(set(episodes)) >= 1, verdicts
            # the replay after the crash derived the very keys written before it: nothing new, nothing twice
            ahead_keys = {json.loads(bytes(row[0]))["episode"] for row in sqlite3.connect(outbox).execute(
                f"SELECT payload FROM events WHERE kind IN ({verdict_kinds})")}
            assert set(episodes) == ahead_keys
            assert any(p["asset"] in ("dc-primary", "switch-1") for _, _, p in verdicts), verdicts
            # each anchored root is counted once: no reading was stored or anchored twice
            assert count(store, "SELECT COALESCE(SUM(count), 0) FROM chunks") == gateway.published
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    assert proc.returncode == 0, log.read_text()[-2000:]
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    assert [x["event"] for x in lines if x["event"].startswith("oracle-")] == [
        "oracle-started", "oracle-started", "oracle-stopped"]  # the first one never got to stop


def test_an_ordinary_mqtt_client_and_a_modbus_device_reach_the_oracle_process_and_are_proven(  # type: ignore[no-untyped-def]
        fresh_chain, tmp_path: Path) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from bus.mqtt import encode_payload, topic_for
    from core.messages import Reading
    from oracles.ingest.modbus import ModbusDeviceSimulator
    from oracles.ingest.registers import PUMP_MAP
    from oracles.telemetry import TelemetryStore
    from tests.conftest import run_cli

    chain = fresh_chain
    model_file = tmp_path / "water.joblib"
    save_model(train_sector(Sector.WATER, rows=16), model_file)
    me = oracle(chain.settings, "water", 2).address
    mqtt_port, modbus_port = free_port(), free_port()
    log = tmp_path / "oracle.log"
    from datetime import UTC, datetime, timedelta
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    sent = [Reading(sector=Sector.WATER, asset_id="pump-station-1", sensor_id="inlet-pressure", quantity="pressure_m",
                    unit="m", value=12.0 + i / 4, timestamp=start + timedelta(seconds=i)) for i in range(5)]
    with EmbeddedBroker(port=mqtt_port), ModbusDeviceSimulator(
            PUMP_MAP, port=modbus_port, values={"discharge-pressure": 41.5, "vibration": 2.75}):
        out = open(log, "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "qeaims", "oracle", "--sector", "water", "--index", "2", "--mqtt-port",
             str(mqtt_port), "--modbus", f"127.0.0.1:{modbus_port}", "--model", str(model_file), "--batch-size", "8",
             "--anchor-age", "0.5"], env=chain.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for("the oracle to start", lambda: "oracle-started" in log.read_text() or proc.poll() is not None,
                     timeout_s=90)
            assert proc.poll() is None, log.read_text()[-2000:]
            device = paho.Client(CallbackAPIVersion.VERSION2, client_id="pump-station-1-gw")
            device.username_pw_set("pump-station-1-gw")
            device.connect("127.0.0.1", mqtt_port)
            device.loop_start()
            for r in sent:
                device.publish(topic_for(r.sector, r.asset_id, r.sensor_id), encode_payload(r), qos=1) \
                    .wait_for_publish(5)
            device.disconnect()
            device.loop_stop()

            def anchored() -> int:
                return sum(int(p["count"]) for o, _, p in ledger_events(chain, "telemetry-root")
                           if o.lower() == me.lower())
            wait_for("MQTT and Modbus readings anchored", lambda: anchored() >= len(sent) + 2 * len(PUMP_MAP.points))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert proc.returncode == 0, log.read_text()[-2000:]
    store = TelemetryStore.for_oracle(chain.settings.home, me)
    refs = {}
    for info in store.batches():
        for i in range(info.count):
            p = store.proof(f"{info.batch}:{i}")
            refs.setdefault(p.reading.sensor_id, p.ref)
    store.close()
    assert {"inlet-pressure", "vibration", "flow"} <= set(refs)
    for sensor in ("inlet-pressure", "vibration"):  # one that came over MQTT, one polled over Modbus
        checked = run_cli(["audit", "proof", "--oracle", "water-2", "--reading", refs[sensor], "--json"], chain.env)
        assert checked.returncode == 0, checked.stderr
        assert json.loads(checked.stdout)["ok"] is True
