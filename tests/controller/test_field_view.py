"""controller.scada.FieldView under one forged reading (review, review-ctl).

The planner reads the field through this view: FLISR's tripped switch, a hospital's declared MCI
(`SectorPlugin.field_fault`) and the hour a field-shown fault is modelled at (`TwinPlanner._field_time`,
the newest reading's time in the sector).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from bus.mqtt import encode_payload, topic_for
from controller.scada import FieldView
from core.messages import Reading, Sector

pytestmark = pytest.mark.unit

FIELD_NOW = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)  # the twins' clock lags the wall clock by months


def _view() -> FieldView:
    view = FieldView.__new__(FieldView)  # no broker: only the view's bookkeeping is under test
    view._latest, view._lock = {}, threading.Lock()
    return view


def _hear(view: FieldView, sensor: str, value: float, at: datetime) -> None:
    asset, _, quantity = sensor.partition("/")
    reading = Reading(sector=Sector.HEALTHCARE, asset_id=asset, sensor_id=quantity, quantity=quantity,
                      unit="count", value=value, timestamp=at)
    view._on_message(topic_for(Sector.HEALTHCARE, asset, quantity), encode_payload(reading))


def test_one_reading_stamped_ahead_does_not_pin_its_sensor_or_the_field_clock() -> None:
    from controller.planning import TwinPlanner

    view = _view()
    _hear(view, "hospital-2/mci_prealert", 0.0, FIELD_NOW)
    _hear(view, "hospital-2/beds_occupied", 200.0, FIELD_NOW)
    _hear(view, "hospital-2/mci_prealert", 7.0, FIELD_NOW + timedelta(days=30))  # forged, once
    for minute in range(1, 10):  # the honest board goes on reporting
        _hear(view, "hospital-2/mci_prealert", 0.0, FIELD_NOW + timedelta(minutes=minute))
        _hear(view, "hospital-2/beds_occupied", 200.0, FIELD_NOW + timedelta(minutes=minute))
    latest = {r.sensor_id: r.value for r in view.readings(Sector.HEALTHCARE)}
    assert latest["hospital-2/mci_prealert"] == 0.0
    field_time = TwinPlanner(view)._field_time(Sector.HEALTHCARE)
    assert field_time is not None and field_time - FIELD_NOW < timedelta(hours=1)


def test_a_sector_whose_clock_jumps_is_believed_at_once_and_a_late_reading_never_replaces_a_newer() -> None:
    view = _view()
    later = FIELD_NOW + timedelta(days=30)
    for at in (FIELD_NOW, later):  # a twin resumed a month on: every sensor jumps together
        _hear(view, "hospital-2/mci_prealert", 0.0, at)
        _hear(view, "hospital-2/beds_occupied", 200.0 if at == FIELD_NOW else 210.0, at)
    assert {r.sensor_id: r.timestamp for r in view.readings(Sector.HEALTHCARE)} == \
        {"hospital-2/mci_prealert": later, "hospital-2/beds_occupied": later}
    _hear(view, "hospital-2/beds_occupied", 150.0, FIELD_NOW)  # a late (or replayed) reading
    assert {r.sensor_id: r.value for r in view.readings(Sector.HEALTHCARE)}["hospital-2/beds_occupied"] == 210.0
    assert view.readings(Sector.WATER) == []


def test_a_reading_stamped_a_little_ahead_is_believed_and_one_far_ahead_ages_out() -> None:
    from controller.scada import AHEAD_S

    view = _view()
    _hear(view, "hospital-2/beds_occupied", 200.0, FIELD_NOW)
    _hear(view, "hospital-2/mci_prealert", 0.0, FIELD_NOW)
    _hear(view, "hospital-2/mci_prealert", 1.0, FIELD_NOW + timedelta(seconds=AHEAD_S))  # a period early: believed
    assert {r.sensor_id: r.value for r in view.readings(Sector.HEALTHCARE)}["hospital-2/mci_prealert"] == 1.0
    _hear(view, "hospital-2/mci_prealert", 7.0, FIELD_NOW + timedelta(seconds=AHEAD_S + 1))  # past the bound
    assert {r.sensor_id: r.value for r in view.readings(Sector.HEALTHCARE)}["hospital-2/mci_prealert"] == 1.0
