"""The incident rule (`sectors.transportation.rules`): a lane-blocking crash named as soon as a second
system agrees with the camera, and no street closed on one falsified system.

The rows are the traffic twin's own (uxsim); the falsifications are the attacker's, made with the
twin's measurement attacks as the scenarios make them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from core.messages import AttackKind, FaultKind, Reading
from sectors.invariants import Violation
from sectors.transportation.rules import (
    CONTRADICT_ROWS,
    FLOWING_KMH,
    ROWS,
    RULES,
    STOPPED_KMH,
    IncidentCamera,
    invariants,
)
from sectors.transportation.twin import CAD_DELAY_S, TransportTwin

pytestmark = pytest.mark.unit

ROW_S = 30
RULE = IncidentCamera("link:n11-n12", "link:n11-n12/stopped_vehicle", "link:n11-n12/cad_incident",
                      "link:n11-n12/speed_kmh", "link:n11-n12/density_veh_km")


def window(camera: Sequence[float], speed: Sequence[float], density: Sequence[float],
           cad: Sequence[float] | None = None) -> dict[str, np.ndarray]:
    return {RULE.camera: np.array(camera, dtype=float), RULE.speed: np.array(speed, dtype=float),
            RULE.density: np.array(density, dtype=float),
            RULE.cad: np.array(cad if cad is not None else [0.0] * len(camera), dtype=float)}


class Rows:
    """The twin's rows, kept as the oracle keeps its window (the last few rows, oldest first)."""

    def __init__(self, twin: TransportTwin, keep: int = 4) -> None:
        self.twin, self.keep, self.rows = twin, keep, list[list[Reading]]()

    def step(self) -> list[Violation]:
        self.rows = [*self.rows, self.twin.advance(ROW_S)][-self.keep:]
        ids = [r.sensor_id for r in self.rows[-1]]
        return invariants({sid: np.array([row[j].value for row in self.rows]) for j, sid in enumerate(ids)})


def test_every_link_has_its_camera_and_loops_on_the_wire() -> None:
    sensors = set(TransportTwin(seed=0, baseline=False, duration_h=1).sensor_ids())
    assert len(RULES) == 48
    for rule in RULES:
        assert set(rule.sensors()) <= sensors


def decided(found: list[Violation]) -> list[Violation]:
    """The rule's verdicts other than alerts (one system's alarm, told at once, moving nothing)."""
    return [v for v in found if not v.alert]


@pytest.mark.parametrize("speed,fault", [((50, 2.0, 0.0), True), ((45.0, 38.0, 40.0), False)])
def test_the_loops_confirm_or_contradict_the_camera(speed: tuple[float, ...], fault: bool) -> None:
    [violation] = RULE.check(window((1, 1, 1), speed, (20, 20, 20)))
    assert violation.fault is fault and violation.asset == "link:n11-n12"
    assert violation.sensor == RULE.camera and {RULE.speed, RULE.density} <= set(violation.reads)


def test_the_dispatch_record_confirms_the_camera_whatever_the_loops_say() -> None:
    [violation] = RULE.check(window((0, 1), (50, 50), (0, 0), cad=(0, 1)))
    assert violation.fault and violation.sensor == RULE.camera and violation.reads == (RULE.cad,)


def test_a_dispatch_record_that_the_camera_and_the_loops_do_not_bear_out_is_distrusted() -> None:
    [violation] = RULE.check(window((0, 0, 0), (45, 40, 33), (20, 20, 20), cad=(1, 1, 1)))
    assert not violation.fault and violation.sensor == RULE.cad
    # standing traffic: the record is told at once (an alert), and the rule waits for the camera
    [alert] = RULE.check(window((0, 0, 0), (0, 0, 0), (20, 20, 20), cad=(1, 1, 1)))
    assert alert.alert and alert.sensor == RULE.cad and alert.asset == RULE.link


def test_the_row_of_the_crash_still_shows_the_traffic_before_it() -> None:
    """A fresh alarm over loops that flowed until now is no lie: the crash may be seconds old."""
    assert CONTRADICT_ROWS == 3
    for camera in ((0, 1, 1), (0, 0, 1)):
        [alert] = RULE.check(window(camera, (50, 45, 40), (20, 20, 20)))
        assert alert.alert and not alert.fault and alert.sensor == RULE.camera and alert.asset == RULE.link


@pytest.mark.parametrize("camera,speed,density", [
    ((1, 0), (0, 0), (20, 20)),                  # the alarm has cleared
    ((0, 1), (50, STOPPED_KMH), (20, 20)),       # one slow row is a red light, not a blocked lane
    ((0, 1), (STOPPED_KMH + 1, 0), (20, 20)),
    ((0, 1), (FLOWING_KMH - 1, 50), (20, 20)),   # neither standing nor flowing: wait
    ((0, 1), (0, 0), (20, 0)),                   # nobody on the link: nothing to confirm it with
    ((0, 1), (0, float("nan")), (20, 20)),       # a non-finite reading is no evidence either way
    ((1,), (0,), (20,)),                         # fewer than ROWS rows
])
def test_no_verdict_without_two_rows_of_evidence(camera: tuple[float, ...], speed: tuple[float, ...],
                                                 density: tuple[float, ...]) -> None:
    assert ROWS == 2
    assert decided(RULE.check(window(camera, speed, density))) == []


@pytest.mark.parametrize("missing", ["speed", "cad", "camera", "density"])
def test_a_missing_sensor_is_no_evidence(missing: str) -> None:
    w = window((0, 1), (0, 0), (20, 20), cad=(0, 1))
    del w[getattr(RULE, missing)]
    assert RULE.check(w) == []


def test_a_normal_morning_peak_breaks_no_rule() -> None:
    rows = Rows(TransportTwin(seed=1, baseline=False, duration_h=1))
    for _ in range(100):
        assert rows.step() == []


@pytest.mark.parametrize("link,severity,seed", [("link:n11-n12", 0.9, 1), ("link:n11-n12", 0.95, 2),
                                                ("link:n13-n12", 1.0, 3)])
def test_a_lane_blocking_crash_is_a_fault_of_its_link_within_three_rows(link: str, severity: float,
                                                                         seed: int) -> None:
    """The camera sees it in the first row, the CAD has it once the call is in (60 s: two rows)."""
    assert CAD_DELAY_S == 2 * ROW_S
    rows = Rows(TransportTwin(seed=seed, baseline=False, duration_h=1))
    for _ in range(30):
        assert rows.step() == []
    rows.twin.inject_fault(FaultKind.INCIDENT, link, severity=severity)
    found = [rows.step() for _ in range(3)]
    # the camera's alarm is told in the first row (as an alert, or already confirmed by the loops)
    assert [v.asset for v in found[0]] == [link] and all(v.alert or v.fault for v in found[0])
    named = decided([v for row in found for v in row])
    assert named, f"no verdict on {link} within 3 rows of the crash"
    assert {(v.asset, v.fault) for v in named} == {(link, True)}


def test_a_falsified_camera_on_a_busy_street_is_distrusted_not_obeyed() -> None:
    rows = Rows(TransportTwin(seed=1, baseline=False, duration_h=1))
    for _ in range(30):
        rows.step()
    rows.twin.inject_attack(AttackKind.BIAS, "link:n10-n11/stopped_vehicle", magnitude=1.0)
    named = [v for _ in range(20) for v in rows.step()]
    assert named, "a camera alarm over flowing traffic went unremarked for 10 minutes"
    assert all(not v.fault and v.sensor == "link:n10-n11/stopped_vehicle" for v in named)


@pytest.mark.parametrize("sensor", ["link:n10-n11/cad_incident", "link:n10-n11/stopped_vehicle"])
def test_one_falsified_system_never_closes_a_street(sensor: str) -> None:
    rows = Rows(TransportTwin(seed=2, baseline=False, duration_h=1))
    for _ in range(30):
        rows.step()
    rows.twin.inject_attack(AttackKind.BIAS, sensor, magnitude=1.0)
    assert not [v for _ in range(60) for v in rows.step() if v.fault]
