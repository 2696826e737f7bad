"""`qeaims up` / `ps` / `down`: the supervisor runs broker, twins and oracles, and restarts a dead oracle."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx

from tests.cli.test_cli import _one_line_error
from tests.conftest import free_port, run_cli
from tests.oracles.test_oracle_node import ledger_events
from tests.support import wait_until


def assert_one_line_error(result, expected: str) -> None:  # type: ignore[no-untyped-def]
    line = _one_line_error(result)
    assert expected in line, line


def test_up_runs_a_sector_end_to_end_restarts_a_killed_oracle_and_down_stops_it(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    env = chain.env
    port = free_port()
    try:
        api_port = free_port()
        started = run_cli(["up", "--sectors", "banking", "--oracles", "4", "--speed", "600", "--mqtt-port",
                           str(port), "--kme-port", str(free_port()), "--api-port", str(api_port), "--json"], env,
                          timeout=400)
        assert started.returncode == 0, started.stderr
        status = json.loads(started.stdout)
        names = sorted(c["name"] for c in status["components"])
        assert names == ["api", "broker", "controller", "kme", "oracles-banking", "twin-banking"]  # 4 oracles, one host
        assert status["api"] == f"http://127.0.0.1:{api_port}/"
        _dev_tokens_answer(fresh_chain.settings.home, status["api"])
        # the twin's readings travel broker → four oracles → four streams of anchored roots
        wait_until(lambda: len({o.lower() for o, _, _ in ledger_events(chain, "telemetry-root")}) == 4, 120,
                   what="every oracle to anchor telemetry", interval_s=0.25)

        victim = next(c for c in status["components"] if c["name"] == "oracles-banking")
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            now = json.loads(run_cli(["ps", "--json"], env).stdout)
            again = next(c for c in now["components"] if c["name"] == "oracles-banking")
            if again["state"] == "running" and again["restarts"] > victim["restarts"] and again["pid"] != victim["pid"]:
                break
            assert time.monotonic() < deadline, f"the supervisor did not restart the oracle: {again}"
            time.sleep(0.5)

        assert_one_line_error(run_cli(["up", "--sectors", "banking", "--mqtt-port", str(port)], env), "already up")
        assert_one_line_error(run_cli(["scenario", "run", "storm-day"], env), "needs the sewage, electricity")
        assert_one_line_error(run_cli(["scenario", "run", "data-centre-outage", "--speed", "3"], env),
                              "runs its twins at speed 600")

        # a scripted fault, played through the twin's simulation topic and measured from the chain
        played = run_cli(["scenario", "run", "data-centre-outage", "--timeout", "30", "--json"], env, timeout=300)
        assert played.returncode == 0, played.stderr[-2000:]
        report = json.loads(played.stdout)
        assert report["faults"]["injected"] == 1 and report["tracks"][0]["error"] == "", report
        assert report["faults"]["wrongful_quarantines"] == 0 and report["wrongful_quarantines"] == []
        assert report["audit"]["invalid"] == [] and report["audit"]["events"] > 0
        assert set(report["kpis"]) >= {"detection_time_s", "isolation_time_s", "cross_system_response_s",
                                       "restoration_time_s", "availability", "baseline"}
        assert report["kpis"]["availability"]["banking"] < 1.0  # the outage shows in the twin's service feed
        assert report["kpis"]["baseline"]["availability"]["banking"] < 0.5  # and, unattended, lasts all run
        # both over the scenario's window, not the live city's minutes of baseline computing after it
        # (at 600x those minutes are days of field time; counted on, the storm day compared hours of storm
        # with the automation on to fewer hours of it with the automation off)
        assert report["kpis"]["availability_window_s"]["banking"] <= report["kpis"]["baseline"]["window_s"] + 600
        field, wall = report["kpis"]["field"], report["kpis"]["wall"]
        assert set(field) == set(wall) == {"detection_p95_s", "confirmation_p95_s", "isolation_p95_s",
                                           "cross_system_response_p95_s", "restoration_p95_s"}
        assert field["detection_p95_s"] is not None and report["kpis"]["detection_time_s"] == field["detection_p95_s"]
        # the outage is a fault (not one system's alert): confirmed no earlier than detected
        assert field["confirmation_p95_s"] is not None and field["confirmation_p95_s"] >= field["detection_p95_s"]
        # virtual time: the city ran at real time from 30 field s before the injection until the outage was
        # settled, so its steps cost their wall seconds in field time (at 600x throughout, a second of
        # processing would have read as ten minutes); the window closed, and is in the report
        pace = report["kpis"]["pace"]
        assert pace["real_time_around_faults"] and len(pace["windows"]) == 1, pace
        window = pace["windows"][0]
        # (it opens 30 field s before the injection is due, read every 0.5 wall s: at 600x a tick is 300
        # field s, so it may open as late as the tick that fires the injection)
        assert window["to_s"] is not None and 500 <= window["from_s"] <= 600 + 300 and window["to_s"] > 600, pace
        # a twin publishes a period's readings when it steps into it, so the field time of the first
        # reading after the onset is one report period (banking: 60 s) ahead of the wall; beyond that,
        # field seconds are the wall's (at 600x throughout they would be 600 times the wall's)
        assert field["detection_p95_s"] <= wall["detection_p95_s"] + 60.0 + 5.0, report["kpis"]
        # ... and closed once service was restored around the outage (at 600x the scenario's clock is read
        # every 300 field s, too coarse to compare the window's edges with the twin's own clock)
        assert field["restoration_p95_s"] is not None and window["to_s"] > window["from_s"]
        assert report["targets"]["unit"].startswith("field seconds")

        # every oracle reports how late readings reach it, hop by hop
        wait_until(lambda: json.loads(run_cli(["ps", "--latency", "--json"], env).stdout)["sectors"]
                   .get("banking", {}).get("oracles") == 4, 60, what="four oracles' ingest-latency lines")
        latency = json.loads(run_cli(["ps", "--latency", "--json"], env).stdout)["sectors"]["banking"]
        assert latency["batches"] > 0 and latency["total_p95_s"] is not None, latency

        # the secure links: every link hybrid, sessions on-chain; then an eavesdropper on one of them
        links = json.loads(run_cli(["link", "status", "--json"], env).stdout)
        assert {row["mode"] for row in links["links"]} == {"hybrid"}, links
        assert all(row["opened"] > 0 for row in links["links"] if row["slave"].startswith("oracle-")), links
        assert len({o for o, _, _ in ledger_events(chain, "key-rotation")}) == 1  # the controller records them
        tapped = run_cli(["scenario", "run", "eavesdropper", "--link", "twin-banking~oracle-banking-3", "--json"],
                         env, timeout=300)
        assert tapped.returncode == 0, tapped.stderr[-2000:]
        eve = json.loads(tapped.stdout)
        assert eve["complete"], eve["timeline_s"]
        assert eve["readings_opened_during_attack"] > 0, eve  # the fallback channel kept the readings flowing
        assert eve["audit"]["invalid"] == []
    finally:
        stopped = run_cli(["down", "--keep-chain"], env, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    final = json.loads(run_cli(["ps", "--json"], env).stdout)
    assert {c["state"] for c in final["components"]} == {"stopped"}
    # a clean stop exits 0: every oracle anchored what it had stored
    assert all(c["last_exit"] == 0 for c in final["components"]), final


def test_down_stops_components_whose_supervisor_was_killed(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    env = fresh_chain.env
    port = free_port()
    try:
        started = run_cli(["up", "--sectors", "healthcare", "--oracles", "1", "--speed", "60", "--mqtt-port",
                           str(port), "--kme-port", str(free_port()), "--no-api", "--json"], env, timeout=400)
        assert started.returncode == 0, started.stderr
        status = json.loads(started.stdout)
        os.kill(status["supervisor"], signal.SIGKILL)  # the supervisor dies; its children live on
        children = [c["pid"] for c in status["components"]]
        assert all(_alive(p) for p in children)
    finally:
        stopped = run_cli(["down", "--keep-chain"], env, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert "5 orphaned components stopped" in stopped.stdout  # broker, KME, controller, oracle, twin
    wait_until(lambda: not any(_alive(p) for p in children), 10, what="the orphans to go (qeaims down)")


def _dev_tokens_answer(home: Path, url: str) -> None:
    """`qeaims up` wrote a token per role (0600) and the API it started knows each of them."""
    path = home / "api" / "dev-tokens.json"
    assert path.stat().st_mode & 0o777 == 0o600
    tokens = json.loads(path.read_text())["tokens"]
    assert {(t["role"], t["sector"]) for t in tokens} >= {("auditor", None), ("operator", "banking")}
    assert sum(t["role"] == "governor" for t in tokens) == len(list((home / "keystores" / "governors").glob("*.json")))
    for token in tokens:
        who = httpx.get(f"{url}api/v1/whoami", headers={"Authorization": f"Bearer {token['token']}"}, timeout=10)
        assert who.status_code == 200 and who.json()["label"] == token["label"], who.text


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has exited; only its parent has not reaped it
    except OSError:
        return False


def test_up_refuses_bad_flags_in_one_line(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    env = fresh_chain.env
    assert_one_line_error(run_cli(["scenario", "run", "meteor-strike"], env), "unknown scenario 'meteor-strike'")
    assert_one_line_error(run_cli(["scenario", "run", "storm-day"], env), "start it with `qeaims up`")
    assert_one_line_error(run_cli(["up", "--sectors", "gas"], env), "unknown sector 'gas'")
    assert_one_line_error(run_cli(["up", "--sectors", "water,water"], env), "names a sector twice")
    assert_one_line_error(run_cli(["up", "--oracles", "9"], env), "--oracles")
    assert_one_line_error(run_cli(["ps"], env), "nothing was started")
    assert_one_line_error(run_cli(["oracle", "--sector", "gas", "--index", "1"], env), "unknown sector")
    assert_one_line_error(run_cli(["oracle", "--sector", "water", "--index", "1", "--modbus", "nohost"], env),
                          "not HOST:PORT")
    assert_one_line_error(run_cli(["oracle", "--sector", "banking", "--index", "1", "--model", "/nonexistent"], env),
                          "no model file")
    assert_one_line_error(run_cli(["twin", "--sector", "water", "--speed", "0"], env), "--speed")
