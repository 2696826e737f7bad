"""The MCI rule (`sectors.healthcare.rules`): a surge named in its first row, and not by one falsified system.

The rows are the healthcare twin's own (simpy); only the falsifications are the attacker's, made
with the twin's measurement attacks as the scenarios make them.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.messages import AttackKind, FaultKind
from sectors.healthcare.rules import RULES, invariants
from sectors.healthcare.twin import DISPATCH, HealthcareTwin
from sectors.invariants import Violation

pytestmark = pytest.mark.unit

CAD, BOARD = f"{DISPATCH}/mci_hospital-2", "hospital-2/mci_prealert"


def newest(twin: HealthcareTwin, minutes: int = 1) -> list[Violation]:
    """Advance `minutes` a minute at a time; the violations of the last row."""
    for _ in range(minutes):
        rows = twin.advance(60)
    return invariants({r.sensor_id: np.array([r.value]) for r in rows})


def test_every_hospital_has_both_systems_on_the_wire() -> None:
    sensors = set(HealthcareTwin(seed=0).sensor_ids())
    for rule in RULES:
        assert set(rule.sensors()) <= sensors


def test_a_normal_day_breaks_no_rule() -> None:
    twin = HealthcareTwin(seed=3)
    for _ in range(1440):
        assert newest(twin) == []


@pytest.mark.parametrize("factor,expected", [(3.0, 22), (1.2, 2)])
def test_a_surge_is_a_fault_of_its_hospital_in_the_first_row(factor: float, expected: int) -> None:
    twin = HealthcareTwin(seed=1)
    newest(twin, 30)
    twin.inject_fault(FaultKind.ADMISSION_SURGE, "hospital-2", severity=factor)
    [violation] = newest(twin)
    assert violation.fault and violation.asset == "hospital-2"
    assert violation.sensor == BOARD and violation.reads == (CAD,)
    assert f"{expected} casualties" in violation.message  # 5.5 ED attendances an hour, (factor - 1) of them for 2 h
    twin.clear_fault("hospital-2")
    assert newest(twin) == []  # the MCI stood down


@pytest.mark.parametrize("falsified,other", [(CAD, BOARD), (BOARD, CAD)])
def test_one_system_alone_is_an_instrument_to_distrust(falsified: str, other: str) -> None:
    twin = HealthcareTwin(seed=2)
    newest(twin, 10)
    twin.inject_attack(AttackKind.BIAS, falsified, magnitude=7.0)
    [violation] = newest(twin)
    assert not violation.fault
    assert violation.sensor == falsified and violation.reads == (other,)


def test_a_real_mci_with_one_system_hiding_it_is_still_not_a_fault() -> None:
    """An attacker who zeroes the board during a real MCI gets an instrument distrusted, not silence."""
    twin = HealthcareTwin(seed=4)
    twin.inject_fault(FaultKind.ADMISSION_SURGE, "hospital-2", severity=3.0)
    twin.inject_attack(AttackKind.BIAS, BOARD, magnitude=-22.0)
    [violation] = newest(twin)
    assert not violation.fault and violation.sensor == CAD


def test_missing_sensors_break_nothing() -> None:
    assert invariants({}) == []
    assert invariants({CAD: np.array([], dtype=np.float64)}) == []


# --- a hospital's equipment: the device fleet against the beds, the plant against the tank --------

def rolling(twin: HealthcareTwin, rows: int, window: list[dict[str, float]]) -> list[Violation]:
    """Advance `rows` 30-s rows keeping the last three in `window`; the violations of the last row."""
    for _ in range(rows):
        window.append({r.sensor_id: r.value for r in twin.advance(30)})
        del window[:-3]
    return invariants({k: np.array([row[k] for row in window]) for k in window[-1]})


def test_a_normal_day_in_30_s_rows_breaks_no_equipment_rule() -> None:
    twin, window = HealthcareTwin(seed=4), []
    for _ in range(2880):
        assert rolling(twin, 1, window) == []


def test_a_ventilator_failure_is_a_fault_of_the_hospitals_ventilators_in_its_first_row() -> None:
    twin, window = HealthcareTwin(seed=1), []
    rolling(twin, 10, window)
    twin.inject_fault(FaultKind.EQUIPMENT_FAILURE, "hospital-2:ventilators", severity=0.8)
    [violation] = rolling(twin, 1, window)
    assert violation.fault and violation.asset == "hospital-2:ventilators"
    assert violation.reads == ("hospital-2/icu_usable_beds",)


def test_an_oxygen_plant_failure_is_named_while_the_tank_still_holds_hours() -> None:
    twin, window = HealthcareTwin(seed=2), []
    rolling(twin, 10, window)
    twin.inject_fault(FaultKind.EQUIPMENT_FAILURE, "hospital-1:o2-plant")
    found = [rolling(twin, 1, window) for _ in range(2)]
    faults = [v for row in found for v in row if v.fault]
    assert faults and faults[0].asset == "hospital-1:o2-plant"  # within two 30-s rows
    assert not [v for row in found for v in row if not v.fault]
    assert window[-1]["hospital-1/oxygen_m3"] > 1990  # of 2,000 m3: hours left, and the plan diverts now


@pytest.mark.parametrize(("sensor", "magnitude"), [
    ("hospital-2/ventilators_in_service", -5.0),  # the fleet short alone
    ("hospital-2/icu_usable_beds", -5.0),  # the beds short alone, with power, oxygen and ventilators
    ("hospital-1/o2_plant_running", -1.0),  # the plant "stopped" while the tank holds
])
def test_one_equipment_system_alone_is_an_instrument_to_distrust(sensor: str, magnitude: float) -> None:
    twin, window = HealthcareTwin(seed=3), []
    rolling(twin, 10, window)
    twin.inject_attack(AttackKind.BIAS, sensor, magnitude=magnitude)
    seen = [v for _ in range(3) for v in rolling(twin, 1, window)]
    assert seen and all(not v.fault and v.sensor == sensor for v in seen), seen


def test_a_hospital_without_power_is_not_an_oxygen_plant_failure() -> None:
    # the plant stops with the hospital: that is the power loss's story, not the plant's
    twin, window = HealthcareTwin(seed=1), []
    rolling(twin, 10, window)
    twin.inject_fault(FaultKind.EQUIPMENT_FAILURE, "hospital-1:generator")
    twin.inject_fault(FaultKind.POWER_LOSS, "hospital-1")
    assert not [v for _ in range(4) for v in rolling(twin, 1, window) if "o2-plant" in v.asset]


def test_a_hospital_receiving_diverted_admissions_is_not_faulted_for_them() -> None:
    from sectors.healthcare.plugin import PLUGIN
    from sectors.healthcare.rules import diverted_to

    commanded = {"hospital-2": "hospital-2/admissions divert (isolation 5)"}
    assert PLUGIN.commanded_effect is not None
    assert "hospital-2's admissions are diverted" in str(PLUGIN.commanded_effect("hospital-1/arrivals_per_h", commanded))
    assert diverted_to("hospital-1/queue_length", commanded) is not None
    # the diverting hospital's own sensors are its isolation's business (its asset is commanded)
    assert diverted_to("hospital-2/arrivals_per_h", commanded) is None
    # an MCI declared at the receiving hospital still names it: the rule rests on the CAD and the board
    assert diverted_to("hospital-1/mci_prealert", commanded) is None
    assert diverted_to("hospital-1/oxygen_m3", commanded) is None
    # a power transfer is no diversion
    assert diverted_to("hospital-1/arrivals_per_h", {"hospital-2": "hospital-2/power backup (isolation 3)"}) is None


def test_diverted_arrivals_stay_excused_for_the_arrival_counts_window_after_the_diversion_is_lifted() -> None:
    # the storm day (run 5): hospital-2's admissions were taken back at 02:24:30, and at 02:33:30
    # hospital-1's two-hour arrival count, still holding the patients diverted to it, was called a
    # fault and hospital-1 isolated. The diversion's effect lasts as long as the count's window.
    from chain.commanded import Release
    from oracles.node.voting import _lingering
    from sectors.healthcare._hospital import RATE_WINDOW_S
    from sectors.healthcare.plugin import PLUGIN

    assert PLUGIN.command_aftermath_s == RATE_WINDOW_S
    released = {"hospital-2": Release("hospital-2/admissions divert (isolation 5)", 1735698270000)}  # 02:24:30
    def at(hhmmss: str) -> dict[str, object]:
        return {"observed_at": f"2025-01-01T{hhmmss}+00:00"}
    lingering = _lingering(released, at("02:33:30"), PLUGIN.command_aftermath_s)
    assert PLUGIN.commanded_effect is not None
    assert "diverted" in str(PLUGIN.commanded_effect("hospital-1/arrivals_per_h", lingering))
    assert _lingering(released, at("04:24:30"), PLUGIN.command_aftermath_s)  # the window's last moment
    assert _lingering(released, at("04:25:00"), PLUGIN.command_aftermath_s) == {}  # past it: a surge is a surge
    assert _lingering(released, {}, PLUGIN.command_aftermath_s) == {}  # no field time: nothing excused
    assert _lingering({"hospital-2": Release("x", None)}, at("02:33:30"), 7200.0) == {}
