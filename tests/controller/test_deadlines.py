"""Crews and technicians are due on the sector's field clock (`controller.deadlines`): a pace change
moves them with the field, a restart keeps them, and one forged reading cannot make them early."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.deadlines import Deadline
from core.messages import Sector
from tests.controller.test_field_view import _hear, _view

pytestmark = pytest.mark.unit

FIELD = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


def test_a_deadline_on_the_field_clock_ignores_the_wall_and_the_speed() -> None:
    field = {Sector.WATER: FIELD.timestamp()}
    due = Deadline.after(600.0, sector=Sector.WATER, wall_now=1000.0, speed=30.0, field_clock=field.get)
    assert due == Deadline(wall=1020.0, field=FIELD.timestamp() + 600.0, latest=1600.0)
    # the city slowed to real time: 20 wall seconds later the field has moved 20 s, not 600
    field[Sector.WATER] += 20.0
    assert not due.passed(sector=Sector.WATER, wall_now=1020.0, field_clock=field.get)
    field[Sector.WATER] += 580.0
    assert due.passed(sector=Sector.WATER, wall_now=1020.0, field_clock=field.get)


def test_without_a_view_of_the_field_the_wall_and_speed_decide_as_before() -> None:
    due = Deadline.after(600.0, sector=Sector.WATER, wall_now=1000.0, speed=30.0, field_clock=None)
    assert due.field is None
    assert not due.passed(sector=Sector.WATER, wall_now=1019.9, field_clock=None)
    assert due.passed(sector=Sector.WATER, wall_now=1020.0, field_clock=None)


def test_a_field_deadline_waits_for_the_field_clock_after_a_restart_but_never_past_real_time() -> None:
    """Read back from the recorded step; until the restarted view hears from the sector, the crew is
    not sent on the wall estimate made at 30x (a pace that may no longer hold) but only once even a
    real-time field would be past it: a sector whose sensors went silent still gets its crew."""
    recorded = Deadline(wall=1020.0, field=FIELD.timestamp() + 600.0, latest=1600.0).as_fields()
    assert recorded == {"due": 1020.0, "due_field": FIELD.timestamp() + 600.0, "due_latest": 1600.0}
    due = Deadline.of(recorded)
    silent = {Sector.WATER: FIELD.timestamp() + 5.0}  # the median stamp stopped with the sensors
    for clock in (lambda _s: None, silent.get):
        assert not due.passed(sector=Sector.WATER, wall_now=1020.0, field_clock=clock)
        assert not due.passed(sector=Sector.WATER, wall_now=1599.0, field_clock=clock)
        assert due.passed(sector=Sector.WATER, wall_now=1600.0, field_clock=clock)
    assert Deadline.of({"due": 5.0}) == Deadline(wall=5.0)  # a step recorded before field deadlines
    assert Deadline.of({"due": 5.0, "due_field": True}) == Deadline(wall=5.0)  # not a number: wall only


def test_one_reading_stamped_ahead_does_not_bring_a_technician_early() -> None:
    view = _view()
    for sensor in ("hospital-2/mci_prealert", "hospital-2/beds_occupied", "hospital-2/ed_waiting"):
        _hear(view, sensor, 0.0, FIELD)
    due = Deadline.after(3600.0, sector=Sector.HEALTHCARE, wall_now=0.0, speed=30.0, field_clock=view.clock)
    _hear(view, "hospital-2/ed_waiting", 0.0, FIELD + timedelta(days=1))  # forged by the attacker
    assert view.clock(Sector.HEALTHCARE) == FIELD.timestamp()
    assert not due.passed(sector=Sector.HEALTHCARE, wall_now=100.0, field_clock=view.clock)
    for sensor in ("hospital-2/mci_prealert", "hospital-2/beds_occupied"):
        _hear(view, sensor, 0.0, FIELD + timedelta(hours=1))
    assert due.passed(sector=Sector.HEALTHCARE, wall_now=0.0, field_clock=view.clock)
    assert view.clock(Sector.WATER) is None
