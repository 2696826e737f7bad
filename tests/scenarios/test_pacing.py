"""Virtual time (`qeaims.scenarios.pacing`): the city at real time around each fault and at its speed
between, the schedule it ordered integrated into the scenario's field clock, and windows that end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.messages import AttackKind, FaultKind, Sector
from qeaims.scenarios.clock import TwinClocks
from qeaims.scenarios.definitions import attack, fault
from qeaims.scenarios.pacing import LEAD_S, WINDOW_CAP_S, Pacemaker
from qeaims.scenarios.runner import FaultTrack, real_time_wanted, settled
from sectors.pace import ORDER_RENEW_S, parse_pace


class Wall:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _pacemaker(speed: float = 30.0, *, enabled: bool = True) -> tuple[Pacemaker, Wall, list[tuple[float, float]]]:
    wall, sent = Wall(), []
    pm = Pacemaker(send=lambda b: sent.append((parse_pace(b).pace, parse_pace(b).until)), speed=speed,
                   enabled=enabled, clock=wall)
    return pm, wall, sent


def test_a_window_slows_the_city_renews_its_order_and_ends_it() -> None:
    pm, wall, sent = _pacemaker()
    pm.start()
    assert sent == [(30.0, 1000.0)]  # any order a dead run left is ended at the start
    wall.t = 1010.0
    pm.hold(True, "fault")
    assert sent[-1] == (1.0, 1010.0 + 20.0) and pm.pace_at(1010.0) == 1.0
    wall.t = 1010.0 + ORDER_RENEW_S / 2
    pm.hold(True, "fault")
    assert len(sent) == 2  # not renewed before its time
    wall.t = 1010.0 + ORDER_RENEW_S
    pm.hold(True, "fault")
    assert len(sent) == 3 and sent[-1][0] == 1.0  # renewed: a lost order expires on its own
    wall.t = 1040.0
    pm.hold(False)
    assert sent[-1] == (30.0, 1040.0) and pm.pace_at(1040.0) == 30.0
    # field seconds: 10 wall s at 30x, 30 at 1x, 10 at 30x
    assert pm.field_between(1000.0, 1050.0) == pytest.approx(300.0 + 30.0 + 300.0)
    assert pm.field_between(1050.0, 1000.0) == pytest.approx(-630.0)
    assert pm.windows(1000.0) == [{"from_s": 300.0, "to_s": 330.0}]
    wall.t = 1045.0  # 480 field s since 1000; 450 more at 30x take 15 wall s
    assert pm.wall_after(1000.0, 930.0) == pytest.approx(1060.0)


def test_stopping_ends_an_open_window_and_a_disabled_or_slow_city_is_never_ordered() -> None:
    pm, wall, sent = _pacemaker()
    pm.start()
    pm.hold(True, "fault")
    wall.t = 1100.0
    pm.stop()
    assert sent[-1] == (30.0, 1100.0) and pm.windows(1000.0) == [{"from_s": 0.0, "to_s": 100.0}]
    off, wall, sent = _pacemaker(enabled=False)
    off.start()
    off.hold(True, "fault")
    off.stop()
    assert sent == [] and off.field_between(0.0, 10.0) == 300.0
    slow, _, sent = _pacemaker(speed=1.0)
    slow.start()
    slow.hold(True, "fault")
    assert sent == [(1.0, 1000.0)] and slow.windows(1000.0) == []  # at real time already: nothing to slow


def test_twin_clocks_map_wall_to_field_through_the_pace_ordered() -> None:
    """A block mined 2 wall s after a sample, 1 s of it at 30x and 1 s at real time, is 31 field s on,
    not the 60 a fixed speed would say (capped only by the next sample)."""
    pm, wall, _ = _pacemaker()
    pm.start()
    wall.t = 1001.0
    pm.hold(True, "fault")
    t0 = datetime(2026, 6, 1, 6, tzinfo=UTC)
    clocks = TwinClocks(speed=30.0)
    clocks.paced_by(pm.field_between)
    clocks.record("electricity", 1000.0, t0)
    assert clocks.field_at("electricity", 1002.0) == pytest.approx(t0.timestamp() + 31.0)
    clocks.record("electricity", 1003.0, t0 + timedelta(seconds=32))
    assert clocks.field_at("electricity", 1002.9) == pytest.approx(t0.timestamp() + 32.0)  # capped


def _track(step_kind: str = "fault") -> FaultTrack:
    if step_kind == "attack":
        return FaultTrack(attack(300, Sector.WATER, AttackKind.BIAS, "junction:147/pressure"), None, "junction:147")
    if step_kind == "none":
        return FaultTrack(fault(300, Sector.HEALTHCARE, FaultKind.ADMISSION_SURGE, "hospital-1"), None, "hospital-1")
    return FaultTrack(fault(300, Sector.ELECTRICITY, FaultKind.LINE_FAULT, "line-7"), "line-7", "line-7")


def test_a_fault_is_settled_when_its_kpis_are_in() -> None:
    t = _track()
    assert not settled(t)
    t.detected = t.isolated = t.response = 1.0
    assert not settled(t)  # restoration, the last KPI, is still to come
    t.restored = 2.0
    assert settled(t)
    a = _track("attack")
    a.detected = 1.0
    assert not settled(a)
    a.quarantined = 2.0
    assert settled(a)
    n = _track("none")
    n.detected = 1.0
    assert not settled(n)  # an alert is not yet the fault
    n.confirmed = 2.0
    assert settled(n)
    failed = _track()
    failed.error = "no acknowledgement from the twin in time"
    assert settled(failed)


def test_real_time_is_wanted_before_an_injection_and_until_each_fault_settles_or_its_cap() -> None:
    t = _track()
    assert real_time_wanted([t], None, lambda _: 0.0) == (False, "")  # nothing sent, nothing due
    assert real_time_wanted([t], LEAD_S + 1.0, lambda _: 0.0)[0] is False
    assert real_time_wanted([t], LEAD_S, lambda _: 0.0)[0] is True
    t.onset = 1.0
    assert real_time_wanted([t], None, lambda _: 10.0) == (True, f"{t.step.label} is not settled yet")
    assert real_time_wanted([t], None, lambda _: WINDOW_CAP_S)[0] is False  # never detected: capped
    t.restored = 2.0
    assert real_time_wanted([t], None, lambda _: 10.0)[0] is False
