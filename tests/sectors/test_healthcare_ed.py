"""The emergency department and the availability it defines: a surge queues patients past their
triage target, diverting ambulances shortens the queue, a normal day keeps (nearly) everyone on
time, and the service level counts exactly the late patients and the ICU patients at risk."""

from __future__ import annotations

import pytest

from core.messages import FaultKind, Sector
from qeaims.scenarios.definitions import scenario
from sectors.healthcare import HealthcareTwin
from sectors.healthcare._ed import TARGET_S, erlang_c, sized_bays
from sectors.healthcare._hospital import Patient
from sectors.service import service_level

PERIOD_S = 30
SEEDS = range(8)
STORM = scenario("storm-day")
[SURGE] = [s for s in STORM.steps if s.sector == Sector.HEALTHCARE]  # the storm day's surge at hospital-2
ONSET_S, END_S, SEVERITY = int(SURGE.at_s), int(STORM.duration_s), float(str(SURGE.control.params["severity"]))


def storm(seed: int, *, divert_after_s: int | None, severity: float = SEVERITY) -> tuple[float, float, float]:
    """The storm day's healthcare offline: (time-weighted availability, late patient-minutes, longest
    ED wait at hospital-2 in minutes); ``divert_after_s`` None is the baseline (nobody responds)."""
    twin = HealthcareTwin(seed=seed)
    weighted = late_min = longest = 0.0
    for now in range(PERIOD_S, END_S + 1, PERIOD_S):
        twin.advance(PERIOD_S)
        if now == ONSET_S:
            twin.inject_fault(FaultKind.ADMISSION_SURGE, SURGE.control.target, severity=severity)
        if divert_after_s is not None and now == ONSET_S + divert_after_s:
            twin.apply(twin.command("hospital-2/admissions", "divert"))
        level = service_level(Sector.HEALTHCARE, twin)
        weighted += level.availability * PERIOD_S
        late_min += (level.detail["late_unseen"] + level.detail["late_for_bed"]) * PERIOD_S / 60
        longest = max(longest, twin.hospitals["hospital-2"].ed_longest_wait_s(twin.now_s) / 60)
    return weighted / END_S, late_min, longest


@pytest.mark.parametrize("severity", [3.0, SEVERITY])
def test_the_storm_surge_queues_patients_past_their_target_and_diversion_cuts_it(severity: float) -> None:
    base = [storm(s, divert_after_s=None, severity=severity) for s in SEEDS]
    ctrl = [storm(s, divert_after_s=120, severity=severity) for s in SEEDS]  # the controller's diversion
    # without a response hospital-2's ED queues semi-urgent patients past their hour (seeds 0-7, x3:
    # 1.9 late at worst on average, ~27 late patient-minutes a run; x5: 10 and ~240)
    assert max(b[2] for b in base) > TARGET_S[4] / 60
    assert sum(b[1] for b in base) > 60
    # diverting its ambulances (two in five of an MCI's casualties come by one) cuts the late to a
    # fraction, and the network's availability is higher with it than without on average
    assert sum(c[1] for c in ctrl) < sum(b[1] for b in base) / 3
    assert sum(c[0] for c in ctrl) > sum(b[0] for b in base)
    # hospital-2's longest wait is shorter, less so the bigger the surge: walk-ins (three in five) still come
    assert sum(c[2] for c in ctrl) < sum(b[2] for b in base)


def test_the_storm_day_surge_shows_in_availability() -> None:
    """The storm day's surge (x5, see `qeaims.scenarios.definitions`) costs the baseline a visible
    share of the network's availability (seeds 0-7: 0.9973 vs 0.9995 with the diversion)."""
    base = sum(storm(s, divert_after_s=None)[0] for s in SEEDS) / len(SEEDS)
    ctrl = sum(storm(s, divert_after_s=120)[0] for s in SEEDS) / len(SEEDS)
    assert ctrl - base > 0.001 and round(ctrl, 3) > round(base, 3)


def test_a_normal_day_sees_the_big_hospitals_on_time() -> None:
    twin = HealthcareTwin(seed=1)
    worst, total = 1.0, 0.0
    for _ in range(2880):  # 24 h of 30-s rows
        twin.advance(PERIOD_S)
        level = service_level(Sector.HEALTHCARE, twin)
        worst, total = min(worst, level.availability), total + level.availability
    assert total / 2880 > 0.999 and worst > 0.99
    for hid, h in twin.hospitals.items():  # ~200 and ~130 patients a day at the big hospitals, ~50 at the clinic
        assert h.seen > 40 and h.seen_late / h.seen < (0.03 if hid.startswith("hospital") else 0.2), hid
    # the 8-space ED of clinic-1 pools worse than the big ones: a non-urgent patient may wait past 2 h


def test_availability_counts_the_late_and_the_icu_at_risk_as_lost() -> None:
    twin = HealthcareTwin(seed=0)
    twin.advance(60)
    h, now = twin.hospitals["hospital-2"], twin.now_s
    before = service_level(Sector.HEALTHCARE, twin)
    assert before.availability == 1.0 and before.customers_affected == 0
    needing = before.detail["in_bed"] + before.detail["in_ed"]
    # waiting 61 min: late for semi-urgent (60), on time for non-urgent (120)
    h.ed_queue += [Patient(-1, False, now - 3660, 3600.0, triage=4), Patient(-2, False, now - 3660, 3600.0, triage=5)]
    level = service_level(Sector.HEALTHCARE, twin)
    assert level.detail["late_unseen"] == 1 and level.customers_affected == 1
    assert level.availability == pytest.approx((needing + 2 - 1) / (needing + 2))

    twin.inject_fault(FaultKind.EQUIPMENT_FAILURE, "hospital-2:ats")
    twin.inject_fault(FaultKind.POWER_LOSS, "hospital-2")  # no generator: every ICU patient at risk
    at_risk = h.icu_occupied
    level = service_level(Sector.HEALTHCARE, twin)
    assert level.detail["critical_at_risk"] == at_risk > 0
    assert level.availability == pytest.approx((needing + 2 - 1 - at_risk) / (needing + 2))


def test_spaces_are_staffed_by_erlang_c() -> None:
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # M/M/2 at one erlang: a third of arrivals wait
    assert erlang_c(3, 3.0) == 1.0
    assert [sized_bays(a) for a in (2.553 / 0.31, 1.702 / 0.31, 0.67 / 0.31)] == [23, 17, 8]
    assert {hid: h.ed_bays for hid, h in HealthcareTwin().hospitals.items()} == {
        "hospital-1": 23, "hospital-2": 17, "clinic-1": 8}
