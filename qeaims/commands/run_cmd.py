"""Long-running components, each runnable alone against a given RPC URL and broker.

`qeaims broker` (the city's MQTT broker: Mosquitto where installed, else the embedded one), `qeaims twin --sector S` (a sector twin publishing its
sensors), `qeaims oracle --sector S --index I` (one oracle). `qeaims up` starts them all under a
supervisor; these commands are what it runs, and what an operator runs on separate machines.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from core.errors import ConfigError
from core.logs import log_line as _log_line
from core.logs import setup_logging
from qeaims.commands._common import settings_of
from qeaims.supervisor import install_stop_signals
from sectors.runner import open_twin, parse_sector

__all__ = ["broker", "controller", "oracle", "oracles", "twin"]

MqttHost = Annotated[str, typer.Option(help="MQTT broker host")]
MqttPort = Annotated[int, typer.Option(min=1, max=65535, help="MQTT broker port")]


def log_line(event: str, **fields: object) -> None:
    _log_line("qeaims.run", event, **fields)


def oracle(
    ctx: typer.Context,
    sector: Annotated[str, typer.Option(help="the oracle's sector, e.g. water")],
    index: Annotated[int, typer.Option(min=1, max=64, help="which of the sector's oracles (1..n)")],
    mqtt_host: MqttHost = "127.0.0.1",
    mqtt_port: MqttPort = 1883,
    model: Annotated[Path | None, typer.Option(help="trained model file (default: <home>/models/<sector>.joblib)")]
    = None,
    modbus: Annotated[list[str] | None, typer.Option(help="pump-station RTU to poll, HOST:PORT (repeatable)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=65536, help="readings per anchored Merkle root")] = 1024,
    anchor_age: Annotated[float, typer.Option(min=0.0, max=3600, help="anchor a partial batch after this many s")]
    = 2.0,
    max_future: Annotated[float, typer.Option(min=0.0, help="refuse readings this many s ahead of the clock")]
    = 300.0,
) -> None:
    """Run one oracle: ingest its sector's readings, anchor them, sign verdicts, vote on isolations."""
    from oracles.node import NodeOptions  # the heavy imports (scikit-learn, pandas) only when needed
    from oracles.process import OracleProcessOptions, parse_endpoint, run_oracle

    settings = settings_of(ctx)
    which = parse_sector(sector)
    if model is not None and not model.is_file():
        raise ConfigError(f"no model file at {model}: train one with `qeaims detect train --sector {which.value}`")
    options = OracleProcessOptions(
        mqtt_host=mqtt_host, mqtt_port=mqtt_port, model=model,
        modbus=tuple(parse_endpoint(m) for m in modbus or ()), max_future_s=max_future,
        node=NodeOptions(batch_size=batch_size, max_age_s=anchor_age))
    setup_logging()
    run_oracle(settings, which, index, options, stop=install_stop_signals())


def oracles(
    ctx: typer.Context,
    sector: Annotated[str, typer.Option(help="the oracles' sector, e.g. water")],
    count: Annotated[int, typer.Option(min=1, max=64, help="run oracles 1..count of the sector")] = 4,
    mqtt_host: MqttHost = "127.0.0.1",
    mqtt_port: MqttPort = 1883,
    batch_size: Annotated[int, typer.Option(min=1, max=65536, help="readings per anchored Merkle root")] = 1024,
    anchor_age: Annotated[float, typer.Option(min=0.0, max=3600, help="anchor a partial batch after this many s")]
    = 2.0,
    wire_port: Annotated[int | None, typer.Option(min=1, max=65535, help="run the sector's MQTT gateway on this "
                                                  "port, in front of the broker, for its twin to connect to")] = None,
    wire_learn_s: Annotated[float, typer.Option(min=1.0, max=86_400.0, help="wall seconds of the twin's traffic the "
                                                "gateway's profile is learnt from (when none is saved)")] = 240.0,
) -> None:
    """Run a sector's oracles in one host process, each with its own key, store, session and link."""
    from oracles.node import NodeOptions
    from oracles.process import OracleProcessOptions, run_oracle_host

    settings = settings_of(ctx)
    which = parse_sector(sector)
    if wire_port is not None and wire_port == mqtt_port:
        raise ConfigError(f"--wire-port {wire_port} is the broker's port: the gateway needs a port of its own")
    options = OracleProcessOptions(mqtt_host=mqtt_host, mqtt_port=mqtt_port,
                                   node=NodeOptions(batch_size=batch_size, max_age_s=anchor_age),
                                   wire_port=wire_port, wire_learn_s=wire_learn_s)
    setup_logging()
    run_oracle_host(settings, which, list(range(1, count + 1)), options, stop=install_stop_signals(),
                    on_ready=lambda: log_line("oracle-host-started", sector=which.value, oracles=count))
    log_line("oracle-host-stopped", sector=which.value)


def twin(
    ctx: typer.Context,
    sector: Annotated[str, typer.Option(help="which sector's twin to run")],
    speed: Annotated[float, typer.Option(min=0.01, max=100_000, help="simulated seconds per wall-clock second")]
    = 1.0,
    steps: Annotated[int | None, typer.Option(min=1, help="stop after this many report periods")] = None,
    seed: Annotated[int, typer.Option(min=0, help="random seed of the twin")] = 0,
    start: Annotated[datetime | None, typer.Option(help="twin clock start, ISO-8601 with offset (default: its own)",
                                                   formats=["%Y-%m-%dT%H:%M:%S%z"])] = None,
    mqtt_host: MqttHost = "127.0.0.1",
    mqtt_port: MqttPort = 1883,
    commands: Annotated[bool, typer.Option(help="take actuator commands (checked on-chain) and simulation "
                                                "controls over MQTT; needs the chain")] = True,
) -> None:
    """Run a sector twin and publish its sensors over MQTT each report period.

    The twin's clock is saved after each period (``<home>/twins/<sector>.json``); a restarted twin
    resumes from it (its physics start fresh), so the oracles never see time go backwards.
    """
    from sectors.publish import TwinPublisher

    settings = settings_of(ctx)
    which = parse_sector(sector)
    clock_file = settings.home / "twins" / f"{which.value}.json"
    resumed = start is None and clock_file.is_file()
    if resumed:
        try:
            start = datetime.fromisoformat(json.loads(clock_file.read_text())["now"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"twin clock file {clock_file} is damaged ({exc}): delete it or pass --start") from exc
    clock_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    from sectors.sent_log import SentLog, sent_log_path

    sent_log = SentLog(sent_log_path(settings.home, which.value))
    logged = sent_log.last_clock()
    if not resumed:
        sent_log.clear()  # a new timeline: nothing of an earlier one is resent
    elif logged is not None and start is not None and logged > start:
        start = logged  # killed after logging a period, before saving the clock: that period is resent, not redone

    def save_clock(_readings: object) -> None:
        tmp = clock_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"now": runner.now.isoformat()}))
        os.replace(tmp, clock_file)

    from bus.secure import open_links
    from links.plan import twin_sae

    links = open_links(settings.home, twin_sae(which.value))
    decisions = None
    if commands:
        from chain.connect import connect
        from sectors.remote import chain_decision_check

        decisions = chain_decision_check(connect(settings)[0])
    setup_logging()
    stop = install_stop_signals()
    with sent_log, open_twin(which, seed=seed, start=start) as runner, \
            TwinPublisher(runner, host=mqtt_host, port=mqtt_port, speed=speed, decisions=decisions,
                          links=links, sent_log=sent_log) as publisher:
        log_line("twin-started", sector=runner.sector.value, period_s=runner.period_s, speed=speed,
                 mqtt=f"{mqtt_host}:{mqtt_port}", clock=runner.now.isoformat(), resumed=resumed,
                 links="hybrid" if links is not None else "plaintext")
        try:
            if resumed:  # the broker may have lost what it acknowledged before this twin went down
                publisher.resend_recent("restart")
            publisher.run(stop, steps=steps, on_step=save_clock)
        finally:
            if links is not None:
                links.close()
        log_line("twin-stopped", sector=runner.sector.value, steps=publisher.steps, published=publisher.published)


def controller(
    ctx: typer.Context,
    mqtt_host: MqttHost = "127.0.0.1",
    mqtt_port: MqttPort = 1883,
    speed: Annotated[float, typer.Option(min=0.01, max=100_000, help="the twins' simulated seconds per second "
                                                                     "(crew times are simulated)")] = 1.0,
) -> None:
    """Run the self-healing controller: act on executed isolations, record every step on-chain."""
    from bus.secure import open_links
    from controller.planning import TwinPlanner
    from controller.process import run_controller
    from controller.scada import FieldView
    from links.plan import CONTROLLER_SAE

    settings = settings_of(ctx)
    setup_logging()
    stop = install_stop_signals()
    links = open_links(settings.home, CONTROLLER_SAE)
    # SCADA: FLISR locates a line fault from the field's switches and dark buses, not from the verdict
    try:
        with FieldView(host=mqtt_host, port=mqtt_port, links=links) as field:
            run_controller(settings, TwinPlanner(field), mqtt_host=mqtt_host, mqtt_port=mqtt_port, speed=speed,
                           stop=stop, links=links, field_clock=field.clock)
    finally:
        if links is not None:
            links.close()


def broker(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to bind (127.0.0.1: this machine only)")] = "127.0.0.1",
    port: MqttPort = 1883,
    engine: Annotated[str, typer.Option(help="mosquitto (the distribution's broker), embedded (amqtt, in this "
                                             "process), or auto: Mosquitto where it is installed")] = "auto",
) -> None:
    """Run the city's MQTT broker: Mosquitto where installed, else the embedded one (a site uses its own, with TLS)."""
    from bus.errors import IngestError
    from bus.mosquitto import MosquittoBroker, mosquitto_executable
    from bus.mqtt import EmbeddedBroker

    if engine not in ("auto", "mosquitto", "embedded"):
        raise ConfigError(f"--engine must be auto, mosquitto or embedded, not {engine!r}")
    use_mosquitto = engine == "mosquitto" or (engine == "auto" and mosquitto_executable() is not None)
    settings = settings_of(ctx)
    setup_logging()
    stop = install_stop_signals()
    chosen: MosquittoBroker | EmbeddedBroker = (
        MosquittoBroker(host=host, port=port, data_dir=settings.home / "broker") if use_mosquitto
        else EmbeddedBroker(host=host, port=port))
    with chosen as running:
        log_line("broker-started", url=running.url, engine="mosquitto" if use_mosquitto else "embedded")
        while not stop.wait(1.0):
            if isinstance(running, MosquittoBroker) and not running.alive:
                raise IngestError(f"Mosquitto exited; see {running.log_path}")
    log_line("broker-stopped", url=f"mqtt://{host}:{port}")
