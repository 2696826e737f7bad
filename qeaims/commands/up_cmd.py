"""`qeaims up`, `qeaims ps`, `qeaims down`: the whole city on one machine, behind a supervisor.

`up` makes sure the chain runs and the development consortium is deployed, trains the sector
models that are missing (once; they are saved), then starts the supervisor in the background
and returns when every component runs. `down` stops the supervisor (which stops its children
cleanly) and then the chain, unless `--keep-chain`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import IO, Annotated

import typer
from rich.table import Table

from chain.consortium import ORACLES_PER_SECTOR
from core.config import Settings
from core.errors import ConfigError, DeploymentMissing, QeaimsError
from core.logs import setup_logging
from core.messages import Sector
from qeaims.city_latency import ingest_latency
from qeaims.commands._common import console, err_console, print_json, settings_of
from qeaims.commands.serve_cmd import api_url, bind_socket
from qeaims.supervisor import (
    Supervisor,
    install_stop_signals,
    is_qeaims,
    pid_alive,
    plan,
    read_status,
    run_dir,
    wire_ports,
)
from sectors.runner import parse_sector

__all__ = ["down", "ps", "supervise", "up"]

SectorsOpt = Annotated[str, typer.Option(help="comma-separated sectors, or 'all'")]
OraclesOpt = Annotated[int, typer.Option(min=1, max=ORACLES_PER_SECTOR, help="oracles per sector")]
SpeedOpt = Annotated[float, typer.Option(min=0.01, max=10_000, help="twin seconds per wall-clock second")]
CITY_SPEED = 15.0
"""The city's default speed: twin seconds per wall second. At 30 the six sectors' rows (5-second feeder
RTUs, 30-second loops, SCADA and bank and hospital systems) outran two cores: the oracles fell
minutes behind their readings within ten minutes of the storm, and every figure in field time
counted that lag thirtyfold. At 15 every sector's readings reach its oracles within a second."""
MqttPortOpt = Annotated[int, typer.Option(min=1, max=65535, help="port of the embedded MQTT broker")]
WireWatchOpt = Annotated[bool, typer.Option(help="put each sector's MQTT gateway on its twin's path: its oracles watch "
                                                 "the wire and record what they detect (docs/cyber.md)")]
WireLearnOpt = Annotated[float, typer.Option(min=60.0, max=7 * 86_400.0, help="field seconds of the twins' traffic "
                                                  "each gateway learns its profile from, when none is saved")]
WIRE_LEARN_FIELD_S = 3600.0
ApiPortOpt = Annotated[int, typer.Option(min=1, max=65535, help="loopback port of the API and dashboard "
                                                                "(`qeaims serve`)")]
ApiOpt = Annotated[bool, typer.Option(help="serve the API and dashboard; --no-api leaves them out")]
API_PORT = 8080
API_HOST = "127.0.0.1"  # `qeaims serve`'s default: the city's API is never bound beyond loopback by `up`


def parse_sectors(text: str) -> list[Sector]:
    if text.strip().lower() == "all":
        return list(Sector)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--sectors is empty: name sectors, e.g. water,electricity, or 'all'")
    sectors = [parse_sector(n) for n in names]
    if len(set(sectors)) != len(sectors):
        raise ConfigError("--sectors names a sector twice")
    return sectors


def _running_supervisor(settings: Settings) -> int | None:
    status = read_status(settings)
    if status is None:
        return None
    pid = int(status.get("supervisor", 0))
    return pid if pid > 0 and is_qeaims(pid, "supervise") and not status.get("stopping") else None


def _ensure_deployed(settings: Settings) -> None:
    from chain.connect import connect
    from chain.deploy import deploy_dev_consortium
    from chain.node import start_anvil

    start_anvil(settings)
    try:
        connect(settings)
    except DeploymentMissing:
        with err_console.status("deploying the development consortium") as spinner:
            deploy_dev_consortium(settings, progress=lambda msg: spinner.update(msg))


def _train_missing(settings: Settings, sectors: list[Sector]) -> None:
    """Give every sector a model: the machine's cached one when the same code trained it
    (`oracles.model_cache`), else train it, as many at once as there are cores, each in its own
    process (the sewage twin's SWMM engine is one per process), and cache the result."""
    from oracles import model_cache
    from oracles.training import model_path

    missing = [s for s in sectors if not model_path(settings.home, s).is_file()]
    missing = [s for s in missing if not model_cache.fetch(settings.home, s)]
    if not missing:
        return
    width = max(1, min(len(missing), os.cpu_count() or 1))
    waiting = list(missing)
    running: dict[Sector, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}
    with err_console.status("training") as spinner:
        while waiting or running:
            while waiting and len(running) < width:
                sector = waiting.pop(0)
                errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the child is reaped
                running[sector] = (subprocess.Popen(
                    [sys.executable, "-m", "qeaims", "--home", str(settings.home), "detect", "train", "--sector",
                     sector.value], stdout=subprocess.DEVNULL, stderr=errors), errors)
            spinner.update(f"training the {', '.join(s.value for s in running)} model(s) on their twins' normal "
                           f"operation ({len(missing) - len(waiting) - len(running)} of {len(missing)} done)")
            time.sleep(0.2)
            for sector, (child, err_file) in list(running.items()):
                if child.poll() is None:
                    continue
                del running[sector]
                err_file.seek(0)
                err = err_file.read().decode(errors="replace")
                err_file.close()
                if child.returncode != 0:
                    for other, _ in running.values():
                        other.kill()
                    tail = (err.strip().splitlines() or ["(no output)"])[-1]
                    raise QeaimsError(f"training the {sector.value} model failed: {tail}")
                model_cache.store(settings.home, sector)


def up(
    ctx: typer.Context,
    sectors: SectorsOpt = "all",
    oracles: OraclesOpt = ORACLES_PER_SECTOR,
    speed: SpeedOpt = CITY_SPEED,
    mqtt_port: MqttPortOpt = 1883,
    wait: Annotated[float, typer.Option(min=1, max=3600, help="seconds to wait for every component")] = 900.0,
    links: Annotated[bool, typer.Option(help="encrypt every link (hybrid QKD + ML-KEM-768 + X25519, keys from "
                                             "the KME); --no-links runs them in plaintext")] = True,
    kme_port: Annotated[int, typer.Option(min=1, max=65535, help="port of the KME (ETSI GS QKD 014, HTTPS)")] = 8443,
    wire_watch: WireWatchOpt = False,
    wire_learn: WireLearnOpt = WIRE_LEARN_FIELD_S,
    api: ApiOpt = True,
    api_port: ApiPortOpt = API_PORT,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Start the chain, deploy, then the broker, the KME, the sector twins, their oracles and the API under a
    supervisor."""
    settings = settings_of(ctx)
    chosen = parse_sectors(sectors)
    learn = wire_learn if wire_watch else None
    if wire_watch:
        wire_ports(chosen, mqtt_port)  # a port that leaves no room for the gateways is said before anything starts
    running = _running_supervisor(settings)
    if running is not None:
        raise ConfigError(f"QEAIMS is already up here (supervisor pid {running}): `qeaims down` first")
    if api:
        _check_api_port(api_port)  # before minutes of deploying and training, not after
    _ensure_deployed(settings)
    _train_missing(settings, chosen)
    _prepare_links(settings, chosen, oracles, kme_port if links else None)
    if api:
        from qeaims.dev_tokens import ensure_dev_tokens

        ensure_dev_tokens(settings, chosen, api_url(API_HOST, api_port))
    run = run_dir(settings)
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    args = [sys.executable, "-m", "qeaims", "--home", str(settings.home)]
    args += ["--rpc-url", settings.rpc_url_override] if settings.rpc_url_override else ["--port", str(settings.rpc_port)]
    args += ["supervise", "--sectors", ",".join(s.value for s in chosen), "--oracles", str(oracles),
             "--speed", f"{speed:g}", "--mqtt-port", str(mqtt_port)]
    args += ["--wire-watch", "--wire-learn", f"{wire_learn:g}"] if wire_watch else []
    args += ["--api-port", str(api_port)] if api else []
    with open(run / "supervisor.log", "ab") as log:
        child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    expected = len(plan(chosen, oracles_per_sector=oracles, mqtt_port=mqtt_port, speed=speed,
                        kme_port=kme_port if links else None, wire_learn_field_s=learn,
                        api_port=api_port if api else None))
    deadline = time.monotonic() + wait
    with err_console.status("starting components"):
        while True:
            status = read_status(settings)
            comps = status.get("components", []) if status and status.get("supervisor") == child.pid else []
            if len(comps) == expected and all(c["state"] == "running" for c in comps):
                break
            if child.poll() is not None:
                raise QeaimsError(f"the supervisor exited ({child.returncode}); see {run / 'supervisor.log'}")
            if time.monotonic() > deadline:
                raise QeaimsError(f"not every component started within {wait:g} s; see `qeaims ps` and {run}/logs")
            time.sleep(0.3)
    _show(settings, json_out)


def ps(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False,
       latency: Annotated[bool, typer.Option(help="how late readings reach the oracles, hop by hop (their latest "
                                                  "ingest-latency lines)")] = False) -> None:
    """What the supervisor runs: each component's pid, state, restarts and log."""
    settings = settings_of(ctx)
    if read_status(settings) is None:
        raise ConfigError(f"nothing was started with `qeaims up` under {settings.home}")
    if latency:
        _show_latency(settings, json_out)
        return
    _show(settings, json_out)


def _show_latency(settings: Settings, json_out: bool) -> None:
    from oracles.ingest.latency import HOPS

    rows = ingest_latency(settings)
    if json_out:
        print_json({"sectors": rows, "total_p95_s": max((r.get("total_p95_s") or 0.0 for r in rows.values()),
                                                        default=None)})
        return
    if not rows:
        console.print("no oracle has reported its ingest latency yet (every 15 s once readings flow)")
        return
    table = Table(title="Readings to the oracles: wall s per hop, p95/max of the worst oracle",
                  caption="publish: stamped→sent · broker: sent→received · store: received→committed · "
                          "total: stamped→committed")
    table.add_column("sector")
    table.add_column("oracles", justify="right")
    for hop in HOPS:
        table.add_column(hop, justify="right")
    for sector, row in rows.items():
        cells = [f"{row.get(f'{hop}_p95_s', 0.0):.2f}/{row.get(f'{hop}_max_s', 0.0):.2f}" for hop in HOPS]
        table.add_row(sector, str(row["oracles"]), *cells)
    console.print(table)


def _show(settings: Settings, json_out: bool) -> None:
    status = read_status(settings) or {}
    if json_out:
        print_json(status)
        return
    alive = _running_supervisor(settings)
    table = Table(title=f"QEAIMS components (supervisor {'pid ' + str(alive) if alive else 'not running'})")
    for column in ("component", "pid", "state", "restarts", "log"):
        table.add_column(column)
    for c in status.get("components", []):
        state = c["state"]
        style = "green" if state == "running" else "yellow" if state == "restarting" else "red"
        table.add_row(c["name"], str(c["pid"] or "-"), f"[{style}]{state}[/]", str(c["restarts"]), c["log"])
    console.print(table)
    console.print(f"chain: {settings.rpc_url} · audit with `qeaims audit events` / `qeaims audit verify`")
    if status.get("api"):
        tokens = settings.home / "api" / "dev-tokens.json"  # qeaims/dev_tokens.py (imported only to write it)
        console.print(f"dashboard: {status['api']} · API {status['api']}api/v1 (schema {status['api']}openapi.json)"
                      + (f" · development tokens, one per role: {tokens}" if tokens.is_file() else ""),
                      soft_wrap=True)


def _check_api_port(port: int) -> None:
    """A clear error when the API's port is taken, rather than a component that keeps restarting."""
    try:
        bind_socket(API_HOST, port).close()
    except ConfigError:
        raise ConfigError(f"--api-port {port} is in use on {API_HOST} (another `qeaims serve` or program): "
                          "choose another with --api-port, or --no-api") from None


def down(
    ctx: typer.Context,
    keep_chain: Annotated[bool, typer.Option(help="leave the chain running (for audits)")] = False,
    wait: Annotated[float, typer.Option(min=1, max=600, help="seconds to wait for a clean stop")] = 60.0,
) -> None:
    """Stop the supervisor and its components (cleanly: each oracle anchors what it stored), then the chain."""
    from chain.node import stop_anvil

    settings = settings_of(ctx)
    status = read_status(settings) or {}
    pid = int(status.get("supervisor", 0))
    stopped = "nothing was running"
    if pid > 0 and is_qeaims(pid, "supervise"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # it stops its children in order
        with err_console.status("stopping components"):
            _wait_gone([pid], wait)
        stopped = "components stopped"
        status = read_status(settings) or status
    # children left behind by a supervisor that was killed: stop them directly
    orphans = [int(c["pid"]) for c in status.get("components", []) if c.get("pid") and is_qeaims(int(c["pid"]))]
    if orphans:
        for child in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
        with err_console.status(f"stopping {len(orphans)} components left by the supervisor"):
            left = _wait_gone(orphans, wait)
        for child in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        stopped = f"{len(orphans)} orphaned components stopped" + (f" ({len(left)} killed)" if left else "")
    if not keep_chain:
        stop_anvil(settings)
        stopped += "; chain stopped"
    console.print(stopped)


def _wait_gone(pids: list[int], wait_s: float) -> list[int]:
    """Wait until these processes exit; the ones still there after `wait_s`."""
    deadline = time.monotonic() + wait_s
    left = [p for p in pids if pid_alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in left if pid_alive(p) and is_qeaims(p)]
    return left


def supervise(
    ctx: typer.Context,
    sectors: SectorsOpt = "all",
    oracles: OraclesOpt = ORACLES_PER_SECTOR,
    speed: SpeedOpt = CITY_SPEED,
    mqtt_port: MqttPortOpt = 1883,
    wire_watch: WireWatchOpt = False,
    wire_learn: WireLearnOpt = WIRE_LEARN_FIELD_S,
    api_port: Annotated[int | None, typer.Option(min=1, max=65535, help="serve the API on this loopback port")]
    = None,
) -> None:
    """Run the supervisor in the foreground (what `qeaims up` starts in the background)."""
    settings = settings_of(ctx)
    chosen = parse_sectors(sectors)
    setup_logging()
    stop = install_stop_signals()
    kme_port = secure_links_port(settings)
    gateways = {s.value: port for s, port in wire_ports(chosen, mqtt_port).items()} if wire_watch else {}
    meta = {"speed": speed, "mqtt_port": mqtt_port, "sectors": [s.value for s in chosen], "oracles": oracles,
            "links": "hybrid" if kme_port is not None else "plaintext", "kme_port": kme_port,
            "wire": {"gateways": gateways, "learn_field_s": wire_learn} if wire_watch else None,
            "api": api_url(API_HOST, api_port) if api_port is not None else None}
    Supervisor(settings, plan(chosen, oracles_per_sector=oracles, mqtt_port=mqtt_port, speed=speed,
                              kme_port=kme_port, wire_learn_field_s=wire_learn if wire_watch else None,
                              api_port=api_port),
               meta=meta).run(stop)


def _prepare_links(settings: Settings, sectors: list[Sector], oracles: int, kme_port: int | None) -> None:
    """Write the link plan and make the keys and certificates it needs, or turn the links off."""
    from links.files import LinkFiles
    from links.plan import city_plan
    from links.site import disable, prepare

    files = LinkFiles.of(settings.home)
    if kme_port is None:
        disable(files)
        return
    with err_console.status("preparing the secure links (keys, certificates)"):
        prepare(files, city_plan([s.value for s in sectors], oracles_per_sector=oracles,
                                 kme_url=f"https://127.0.0.1:{kme_port}"))


def secure_links_port(settings: Settings) -> int | None:
    """The KME's port when this data directory runs secure links (a plan exists), else None."""
    from urllib.parse import urlparse

    from links.files import LinkFiles
    from links.plan import LinkPlan

    files = LinkFiles.of(settings.home)
    if not files.enabled:
        return None
    return urlparse(LinkPlan.load(files.plan).kme_url).port or 443
