"""`qeaims scenario list|run`: scripted faults against the running city, a live view, a KPI report.

`run` needs the city up (`qeaims up`): it reads the supervisor's status for the broker port and
the twins' speed, plays the scenario through the twins' simulation topic, shows progress live
(rich) while it watches the chain, then prints the report (or one JSON object with `--json`)
including the automation-off baseline and an audit of every event on the chain. Every report it
prints (the offline year's, the intrusion's and the eavesdropper's too) is also written to
`<home>/scenarios/reports/<scenario>-<UTC yyyymmddThhmmssZ>.json` (`core.kpi_reports`), where the
API's `/kpis` reads it.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from core.config import Settings
from core.errors import ConfigError, QeaimsError
from core.kpi_reports import write_report
from core.messages import Sector
from qeaims.city_latency import KEEPING_UP_S
from qeaims.commands._common import console, err_console, print_json, settings_of

if TYPE_CHECKING:  # heavy imports stay inside the commands (tests/cli/test_cli_imports.py)
    from chain.client import ChainClient
    from chain.manifest import Deployment

EAVESDROPPER = "eavesdropper"
YEAR = "year"
INTRUSION = "intrusion"

app = typer.Typer(help="Scripted scenarios against the running city (`qeaims up` first).", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """The scenarios that ship, with what each one does."""
    from qeaims.scenarios.definitions import all_scenarios  # the sectors' graphs (networkx): when listed

    table = Table(title="Scenarios")
    for column in ("name", "steps", "simulated length", "what happens"):
        table.add_column(column)
    for s in all_scenarios().values():
        table.add_row(s.name, str(len(s.steps) + len(s.byzantine)), f"{s.duration_s / 3600:.1f} h", s.description)
    table.add_row(EAVESDROPPER, "3", "minutes (real time)", "an eavesdropper on a QKD link: detected from the "
                  "link's statistics, recorded on-chain, the channel falls back to ML-KEM-768 + X25519, then restored")
    table.add_row(YEAR, "random", "1 year (offline)", "a year of random faults (electricity, water, banking) "
                  "through the controller's planner and crews without the chain, against the automation-off baseline: "
                  "uptime, recovery, preventive share, feeder losses, cost (no city needed)")
    table.add_row(INTRUSION, "6", "about 20 s (real time, no city needed)",
                  "an attacker scans banking's PLC, writes water's pump protection setting with a stolen identity "
                  "(the pump is quarantined), is refused by electricity from water's indicator, replays a SCADA "
                  "write, floods a relay and guesses healthcare's broker passwords: detection to chain, false "
                  "positives, indicator propagation (a private chain)")
    console.print(table)


@app.command()
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="one of those `qeaims scenario list` shows")],
    speed: Annotated[float | None, typer.Option(min=0.01, max=100_000, help="the twins' speed (default: the one "
                                                                              "`qeaims up` started them with)")] = None,
    timeout: Annotated[float | None, typer.Option(min=1, help="stop watching this many wall seconds after the last "
                                                              "step (default: the scenario's settle time)")] = None,
    baseline: Annotated[bool, typer.Option(help="also run the automation-off baseline (offline twins)")] = True,
    real_time: Annotated[bool, typer.Option("--real-time-around-faults/--constant-speed",
                                            help="slow the city to real time from just before each injection until "
                                                 "the fault is settled, so the processing in the KPIs costs true "
                                                 "field time (docs/field-time.md)")] = True,
    link: Annotated[str | None, typer.Option(help="eavesdropper: the link to tap (default: water gateway to "
                                                  "its first oracle)")] = None,
    attack: Annotated[str, typer.Option(help="eavesdropper: intercept-resend or pns")] = "intercept-resend",
    fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="eavesdropper: share of pulses attacked")] = 0.2,
    seed: Annotated[int, typer.Option(help="year: the seed of the fault draw (same seed, same year)")] = 0,
    faults_scale: Annotated[float, typer.Option(help="year: multiply every fault rate by this (> 0)")] = 1.0,
    sectors: Annotated[str | None, typer.Option(help="year: comma-separated sectors (default: electricity,water,"
                                                     "banking)")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Play a scenario, show it live, and report the KPIs measured on this run."""
    if name == YEAR:
        _year(settings_of(ctx), seed=seed, scale=faults_scale, sectors=sectors, json_out=json_out)
        return
    if name == INTRUSION:
        _intrusion(settings_of(ctx), json_out=json_out)
        return
    if name == EAVESDROPPER:
        _eavesdropper(ctx, link=link, attack=attack, fraction=fraction, timeout_s=timeout or 180.0, json_out=json_out)
        return
    from bus.secure import open_links
    from chain.audit import verify_chain_history
    from controller.commander import Commander
    from links.plan import OPERATIONS_SAE
    from qeaims.city_latency import ingest_latency
    from qeaims.scenarios.definitions import all_scenarios, scenario
    from qeaims.scenarios.pacing import Pacemaker
    from qeaims.scenarios.report import build_report, tracks_table
    from qeaims.scenarios.runner import ScenarioRun, ServiceFeed
    from qeaims.supervisor import is_qeaims, read_status

    settings = settings_of(ctx)
    if name not in all_scenarios():
        raise ConfigError(f"unknown scenario {name!r}: choose one of "
                          f"{', '.join([*all_scenarios(), EAVESDROPPER, YEAR, INTRUSION])}")
    chosen = scenario(name)
    status = read_status(settings)
    if status is None or not is_qeaims(int(status.get("supervisor", 0)), "supervise"):
        raise ConfigError("the city is not running here: start it with `qeaims up` (or pass --home)")
    city_speed = float(status.get("speed", 1.0))
    if speed is not None and abs(speed - city_speed) > 1e-9:
        raise ConfigError(f"the city runs its twins at speed {city_speed:g}, not {speed:g}: "
                          f"restart it with `qeaims up --speed {speed:g}` or leave --speed out")
    missing = [s.value for s in chosen.sectors if s.value not in status.get("sectors", [])]
    if missing:
        raise ConfigError(f"scenario {name} needs the {', '.join(missing)} twin(s), which `qeaims up` did not start")
    port = int(status.get("mqtt_port", 1883))
    wire = status.get("wire") or {}
    gateways = {str(k): int(v) for k, v in (wire.get("gateways") or {}).items()}
    if gateways:  # the play is judged against the profiles, so it starts once every gateway has one
        _await_profiles(settings, [s for s in chosen.sectors if s.value in gateways],
                        float(wire.get("learn_field_s", 3600.0)) / city_speed)
    client, deployment = _connect(settings)
    links = open_links(settings.home, OPERATIONS_SAE)
    with Commander(port=port, client_id="scenario-runner", links=links) as commander, \
            ServiceFeed(port=port, links=links, speed=city_speed) as feed:
        pacemaker = Pacemaker(send=lambda order: commander.pace(status_sectors(status), order), speed=city_speed,
                              enabled=real_time)
        play = ScenarioRun(settings, client, deployment, chosen, city_speed, commander, feed, pacemaker=pacemaker,
                           watched=gateways)
        try:
            title = f"{chosen.name} at {city_speed:g}x: {chosen.description}"
            with Live(tracks_table(play, title), console=err_console, refresh_per_second=2,
                      transient=json_out) as live:
                play.play(lambda r: live.update(tracks_table(r, title)), settle_timeout_s=timeout)
            latency = ingest_latency(settings)  # before the baseline and the audit load the machine
            base = _baseline(chosen, city_speed) if baseline else None
            audit = verify_chain_history(play.index.db, chain_id=client.chain_id, ledger=deployment.event_ledger,
                                         registry=deployment.registry)
            report = build_report(play, baseline=base, audit=audit.as_dict(), ingest=latency)
        finally:
            play.close()
    _keep(settings, chosen.name, report)
    if json_out:
        print_json(report)
        return
    _print(report)


def _connect(settings: Settings) -> tuple[ChainClient, Deployment]:
    """The chain, waited for with a spinner line while it does not answer yet (a supervisor restarting it
    as the scenario starts: crash campaign run 19 ended with exit 2 so)."""
    from qeaims.scenarios.runner import connect_waiting

    with err_console.status("") as spinner:
        return connect_waiting(settings, on_wait=lambda away: spinner.update(
            f"waiting for the chain at {settings.rpc_url} ({away:.0f} s): it does not answer yet"))


def _await_profiles(settings: Settings, sectors: list[Sector], learn_wall_s: float) -> None:
    """Wait for each watched sector's gateway to have learnt its profile (`oracles.wire_watch`)."""
    from oracles.wire_watch import profile_path

    timeout_s = 2 * learn_wall_s + 120.0
    deadline = time.monotonic() + timeout_s
    with err_console.status("") as spinner:
        while True:
            missing = [s.value for s in sectors if not profile_path(settings.home, s).is_file()]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise QeaimsError(f"the gateways of {', '.join(missing)} learnt no profile within "
                                  f"{timeout_s:.0f} s: see `qeaims ps`")
            spinner.update(f"gateways learning the twins' traffic: {len(sectors) - len(missing)} of {len(sectors)} "
                           f"profiles ready (about {learn_wall_s:.0f} s from the twins' start)")
            time.sleep(1.0)


def _keep(settings: Settings, scenario_name: str, report: dict[str, Any]) -> None:
    """Writes the report where `/kpis` reads it and says where on stderr (stdout stays the report). A run's
    figures are never lost to a full disk: the report is printed whether or not the file could be written."""
    try:
        path = write_report(settings.home, scenario_name, report)
    except OSError as exc:
        err_console.print(f"warning: the report was not written to {settings.home}/scenarios/reports "
                          f"({exc.strerror or type(exc).__name__}); it is printed below", markup=False, soft_wrap=True)
        return
    err_console.print(f"report written to {path}", markup=False, highlight=False, soft_wrap=True)


def _intrusion(settings: Settings, *, json_out: bool) -> None:
    from qeaims.scenarios.intrusion import run_intrusion

    with err_console.status("starting", spinner="dots") as status:
        result = run_intrusion(progress=lambda message: status.update(message)).as_dict()
    _keep(settings, INTRUSION, result)
    if json_out:
        print_json(result)
        return
    table = Table(title="Intrusion scenario: attacks seen on the wire")
    for column in ("attack class", "detected", "first packet → on-chain (s)"):
        table.add_column(column)
    for attack, entry in sorted(result["attacks"].items()):
        pct, field_s = entry["detected_pct"], entry["field_s_max"]
        table.add_row(attack, "not played" if pct is None else f"{pct:.0f} % of {entry['attempts']}",
                      "-" if field_s is None else f"{field_s:.3f}")
    console.print(table)
    console.print(f"false positives in the {result['clean_window_s']:g} s clean window: {result['false_positives']}")
    console.print(f"indicator propagation to the other sectors' gateways: p95 {result['propagation_p95_s']} s "
                  f"over {result['propagation_samples']} enforcements")
    console.print(f"cross-sector step blocked: {'yes' if result['cross_sector_blocked'] else 'NO'}")
    for step in result["steps"]:
        console.print(f"  {step['step']}: {step.get('outcome')}", markup=False)


def _eavesdropper(ctx: typer.Context, *, link: str | None, attack: str, fraction: float, timeout_s: float,
                  json_out: bool) -> None:
    from chain.audit import verify_chain_history
    from qeaims.scenarios.eavesdropper import EavesdropperRun, default_link
    from qeaims.supervisor import is_qeaims, read_status

    settings = settings_of(ctx)
    status = read_status(settings)
    if status is None or not is_qeaims(int(status.get("supervisor", 0)), "supervise"):
        raise ConfigError("the city is not running here: start it with `qeaims up` (or pass --home)")
    if attack not in ("intercept-resend", "pns"):
        raise ConfigError(f"--attack must be intercept-resend or pns, not {attack!r}")
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"--fraction must be in (0, 1], not {fraction:g}")
    client, deployment = _connect(settings)
    from links.files import LinkFiles
    from links.plan import LinkPlan

    files = LinkFiles.of(settings.home)
    if not files.enabled:
        raise ConfigError("the city runs plaintext links (`qeaims up --no-links`): restart it with secure links")
    chosen = link or default_link(LinkPlan.load(files.plan))
    play = EavesdropperRun(settings, client, deployment, chosen, kind=attack, fraction=fraction)
    try:
        with err_console.status(f"eavesdropper on {chosen}") as spinner:
            def progress(message: str) -> None:
                err_console.print(message)
                spinner.update(message)

            report = play.play(timeout_s=timeout_s, progress=progress)
        audit = verify_chain_history(play.index.db, chain_id=client.chain_id, ledger=deployment.event_ledger,
                                     registry=deployment.registry)
        report["audit"] = audit.as_dict()
    finally:
        play.close()
    _keep(settings, EAVESDROPPER, report)
    if json_out:
        print_json(report)
        return
    table = Table(title=f"Eavesdropper on {chosen} ({attack}, {fraction:.0%} of pulses): seconds after Eve started")
    table.add_column("step")
    table.add_column("after")
    for step, value in report["timeline_s"].items():
        table.add_row(step, "-" if value is None else f"{value:.1f} s")
    console.print(table)
    console.print(f"readings opened by {chosen.split('~')[1]} while Eve listened: "
                  f"{report['readings_opened_during_attack']}; complete: {report['complete']}; "
                  f"audit: {'ok' if report['audit'].get('invalid') == [] else 'FAILED'}")


def _year(settings: Settings, *, seed: int, scale: float, sectors: str | None, json_out: bool) -> None:
    """The offline year (`qeaims.scenarios.year`): no city, chain or broker; checks its input first."""
    from qeaims.scenarios.year.run import parse_sectors, run_year
    from qeaims.scenarios.year.table import year_table

    chosen = parse_sectors(sectors)
    if not (scale > 0 and scale != float("inf")):
        raise ConfigError(f"--faults-scale must be a positive number, not {scale:g}")
    with err_console.status("a year of faults") as spinner:
        report = run_year(seed=seed, scale=scale, sectors=chosen, progress=lambda m: spinner.update(m))
    _keep(settings, YEAR, report)
    if json_out:
        print_json(report)
        return
    console.print(year_table(report))


def _baseline(chosen: Any, speed: float) -> dict[str, Any] | None:
    """Availability with automation off: the same injections on offline twins, no responses."""
    try:
        from sectors.baseline import run_baseline
        from sectors.service import volume_of
    except ImportError:  # pragma: no cover - shipped with the twins
        return None
    plan = [(s.at_s, s.sector, s.control) for s in chosen.steps]
    # the offline twins are heavy (a storm day is ~2,000 power flows) and the city is still live: the
    # baseline yields the cores to it, or the oracles fall behind while the report is being written
    with contextlib.suppress(OSError):
        os.nice(10)
    with err_console.status("running the automation-off baseline on offline twins"):
        results = run_baseline(plan, sectors=list(chosen.sectors), duration_s=chosen.duration_s)
    return {"availability": {s.value: round(r.availability, 6) for s, r in results.items()},
            "volumes_m3": {s.value: {name: round(v, 1) for k, v in r.integrals.items()
                                     if (name := volume_of(k)) is not None} for s, r in results.items()},
            "detection_time_s": None, "isolation_time_s": None, "cross_system_response_s": None,
            "restoration_time_s": None, "window_s": chosen.duration_s,
            "note": "with automation off nothing detects, isolates or restores: those wait for people (a crew, "
                    "where the sector's plug-in declares one: water's shuts a break's valves when it arrives)"}


def status_sectors(status: dict[str, Any]) -> list[Sector]:
    """The sectors whose twins the running city started (its status file's word)."""
    return [Sector(s) for s in status.get("sectors", []) if s in {x.value for x in Sector}]


def _print(report: dict[str, Any]) -> None:
    k, f = report["kpis"], report["faults"]
    acceptance = report["targets"]["acceptance"]
    brief = report["targets"]["brief"]
    goals = {"detection_p95_s": f"≤ {acceptance['detection_p95_s']} (brief: "
                                f"{brief['detection_time_s']['future'][0]}–{brief['detection_time_s']['future'][1]})",
             "cross_system_response_p95_s": f"≤ {acceptance['cross_system_response_p95_s']} (brief: "
                                            f"{brief['cross_system_response_s']['future']})"}
    table = Table(title=f"Scenario {report['scenario']} at {report['speed']:g}x: KPIs (p95 over the run's faults)",
                  caption="field s = the city's clock; wall s = the processing, at the run's speed", show_header=True)
    for column in ("KPI", "field s", "target (field s)", "wall s", "automation off"):
        table.add_column(column)
    base = k.get("baseline") or {}
    for key, value in k["field"].items():
        wall = k["wall"].get(key)
        table.add_row(key.removesuffix("_s"), "-" if value is None else f"{value:.1f}", goals.get(key, "-"),
                      "-" if wall is None else f"{wall:.2f}", "no automation" if base else "-")
    for sector, row in sorted((k.get("ingest_latency") or {}).items()):
        total = row.get("total_p95_s")
        table.add_row(f"reading latency p95 {sector}", "-", "-", "-" if total is None else f"{total:.2f} (≤ {KEEPING_UP_S:g})", "-")
    for sector, value in sorted(k["availability"].items()):
        other = (base.get("availability") or {}).get(sector)
        table.add_row(f"availability {sector}", f"{value:.4f}", "-", "-", "-" if other is None else f"{other:.4f}")
    for sector, volumes in sorted((k.get("volumes_m3") or {}).items()):
        for key, value in sorted(volumes.items()):
            other = ((base.get("volumes_m3") or {}).get(sector) or {}).get(key)
            table.add_row(f"{sector} {key.removesuffix('_m3')} (m³)", f"{value:.0f}", "-", "-",
                          "-" if other is None else f"{other:.0f}")
    console.print(table)
    console.print(f"faults: {f['injected']} injected, {f['detected']} detected, {f['isolated']} isolated, "
                  f"{f['restored']} restored, {f['wrongful_isolations']} wrongful isolations, "
                  f"{f.get('wrongful_quarantines', 0)} healthy sensors quarantined; "
                  f"audit: {'ok' if report['audit'].get('invalid') == [] else 'FAILED'} "
                  f"({report['audit'].get('events')} events verified)")
    wire = report.get("wire") or {}
    if wire.get("watched"):
        classes = ", ".join(f"{n} {c}" for c, n in sorted(wire["by_class"].items())) or "none"
        console.print(f"wire: {len(wire['watched'])} sector gateway(s) watched; {wire['detections']} detection(s) "
                      f"({wire['events']} oracle events: {classes})")
    for b in report["byzantine"]:
        console.print(f"byzantine: {b['oracle']} proposed isolating {b['node']} alone (proposal {b['proposal']}); "
                      "the quorum did not follow" if not any(w["node"] == b["node"] for w in report["wrongful"])
                      else f"byzantine proposal {b['proposal']} on {b['node']} was EXECUTED")
