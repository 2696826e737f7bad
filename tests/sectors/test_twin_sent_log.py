"""The twin's sent log (`sectors.sent_log`) and how `qeaims twin` resumes with it.

The broker-kill tests (`test_sent_log_broker_kill.py`) show the resend saves readings; these show
the log's own rules: it keeps the window and no more, it is written before a period is published, a
restarted twin resends its window and resumes after the last period it logged (so a period
published but not yet in the clock file is resent with its own values, never stepped again from
fresh physics), and an explicit ``--start`` begins a timeline with nothing of the old one resent.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bus.mosquitto import MosquittoBroker, mosquitto_executable
from core.errors import ConfigError
from core.messages import Sector
from oracles.ingest.mqtt import MqttSubscriber
from oracles.ingest.sink import ReadingSink
from sectors.sent_log import SentLog, sent_log_path
from tests.conftest import free_port, run_cli
from tests.oracles.test_ingest_mqtt import wait_for

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_the_log_resends_what_was_not_published_and_the_window_before_the_last_published(tmp_path: Path) -> None:
    clock = [1000.0]
    with SentLog(tmp_path / "t.sent.sqlite", window_s=10.0, max_periods=5, clock=lambda: clock[0]) as log:
        assert log.recent() == [] and log.last_clock() is None
        for i in range(8):  # one period a second, each acknowledged
            clock[0] = 1000.0 + i
            log.mark_published(log.append(T0 + timedelta(seconds=30 * i), 5000.0 + i, [f"[{i}]".encode(), b"[]"]))
        recent = log.recent()
        assert [p.step for p in recent] == [4, 5, 6, 7, 8]  # at most 5 kept, though 10 s would hold 8
        assert recent[-1].payloads == (b"[7]", b"[]") and recent[-1].stamped == 5007.0
        assert log.last_clock() == T0 + timedelta(seconds=210)
        clock[0] = 1030.0  # 23 s later a period is logged, and its publish fails (the broker is away)
        log.append(T0 + timedelta(seconds=240), 1.0, [b"[8]"])  # the wall clock was stepped back, too
        assert [p.step for p in log.recent()] == [5, 6, 7, 8, 9]  # counted back from the last published (5 kept)
        log.mark_published(9)
        clock[0] = 1031.0
        log.mark_published(log.append(T0 + timedelta(seconds=270), 2.0, [b"[9]"]))
        assert [p.step for p in log.recent()] == [9, 10]
    with SentLog(tmp_path / "t.sent.sqlite", window_s=10.0) as reopened:  # numbering goes on after a restart
        assert reopened.append(T0, 1031.0, [b"[10]"]) == 11
        reopened.clear()
        assert reopened.recent() == [] and reopened.last_clock() is None


def test_a_damaged_log_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.sent.sqlite"
    path.write_bytes(b"not a database, just bytes" * 100)
    with pytest.raises(ConfigError, match="sent log .* is damaged .*move it aside"):
        SentLog(path)


@pytest.mark.skipif(mosquitto_executable() is None, reason="Mosquitto is not installed (make system)")
def test_a_restarted_twin_resends_its_window_and_resumes_after_its_last_logged_period(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    env = {**os.environ, "QEAIMS_HOME": str(home), "COLUMNS": "200"}
    twin = ["twin", "--sector", "banking", "--no-commands", "--speed", "100000", "--mqtt-port", str(port)]
    sink = ReadingSink()
    with MosquittoBroker(port=port, data_dir=tmp_path / "broker"), \
            MqttSubscriber(sink, port=port, sectors=[Sector.BANKING], client_id="oracle-banking-1"):
        first = run_cli([*twin, "--steps", "3", "--start", "2025-01-01T00:00:00+0000"], env)
        assert first.returncode == 0, first.stderr
        wait_for(lambda: len(sink) == 3 * 18)
        before = {(r.asset_id, r.sensor_id, r.timestamp): r.value for r in sink.drain()}
        # killed after logging and publishing period 3, before saving the clock: the file says period 2
        clock = home / "twins" / "banking.json"
        assert json.loads(clock.read_text())["now"] == "2025-01-01T00:01:30+00:00"
        clock.write_text(json.dumps({"now": "2025-01-01T00:01:00+00:00"}))
        second = run_cli([*twin, "--steps", "1"], env)
        assert second.returncode == 0, second.stderr
        wait_for(lambda: len(sink) == 4 * 18)
        after = sink.drain()
        with SentLog(sent_log_path(home, "banking")) as log:
            assert log.last_clock() == T0 + timedelta(seconds=120)
        third = run_cli([*twin, "--steps", "1", "--start", "2026-01-01T00:00:00+0000"], env)  # a new timeline
    resent = [r for r in after if r.timestamp <= T0 + timedelta(seconds=90)]
    fresh = [r for r in after if r not in resent]
    assert {(r.asset_id, r.sensor_id, r.timestamp): r.value for r in resent} == before  # the same values
    assert {r.timestamp for r in fresh} == {T0 + timedelta(seconds=120)}  # then on from period 3, not again from 2
    assert '"event": "twin-resent"' in second.stderr + second.stdout and '"reason": "restart"' in second.stderr + \
        second.stdout
    assert third.returncode == 0, third.stderr
    assert "twin-resent" not in third.stderr + third.stdout
    with SentLog(sent_log_path(home, "banking")) as log:
        assert [p.now for p in log.recent()] == [datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)]
