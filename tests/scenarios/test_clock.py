"""Field time: the twins' published clocks map wall times to the city's clock, and blocks get wall stamps."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from qeaims.scenarios.clock import BlockStamps, TwinClocks
from qeaims.scenarios.pacing import Pacemaker

T0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def test_field_time_follows_the_twin_clock_and_never_passes_its_next_sample() -> None:
    clocks = TwinClocks(speed=30.0)
    clocks.record("water", 1000.0, T0)
    clocks.record("water", 1002.0, T0 + timedelta(seconds=60))  # one 60 s period per 2 wall seconds
    assert clocks.field_at("water", 999.0) is None  # before the first sample nothing is known
    assert clocks.field_at("water", 1001.0) == T0.timestamp() + 30.0
    # a twin that falls behind (60 field s took 2 wall s, not the 2 s its speed promises at 30x … but
    # here 1.5 s would be due): the interpolation stops at the next sample instead of running ahead
    clocks.record("water", 1010.0, T0 + timedelta(seconds=120))
    assert clocks.field_at("water", 1009.0) == T0.timestamp() + 120.0
    assert clocks.field_at("water", 1011.0) == T0.timestamp() + 150.0  # after the last: at speed
    assert clocks.rate("water") == 120.0 / 10.0  # what the twin achieved, not the speed it was asked for
    assert clocks.field_at("sewage", 1001.0) is None  # another sector's clock is its own


def test_repeated_or_reordered_clock_samples_are_ignored() -> None:
    clocks = TwinClocks(speed=1.0)
    clocks.record("banking", 10.0, T0)
    clocks.record("banking", 11.0, T0)  # the same message again
    clocks.record("banking", 12.0, T0 - timedelta(seconds=5))  # an old one, late
    assert clocks.field_at("banking", 20.0) == T0.timestamp() + 10.0


def test_block_stamps_mark_only_blocks_mined_after_the_start(chain) -> None:  # type: ignore[no-untyped-def]
    rpc = chain.client.rpc
    before = int(rpc.call("eth_blockNumber"), 16)
    stamps = BlockStamps(rpc, interval_s=0.05).start()
    try:
        assert stamps.when(before) is None  # history is not this run's
        sent = time.time()
        rpc.call("evm_mine")
        mined = before + 1
        deadline = time.monotonic() + 5
        while stamps.when(mined) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        stamp = stamps.when(mined)
        assert stamp is not None and sent <= stamp <= sent + 1.0
    finally:
        stamps.close()


def test_an_isolation_before_its_fault_began_is_wrongful() -> None:
    from core.messages import FaultKind, Sector
    from qeaims.scenarios.definitions import fault
    from qeaims.scenarios.runner import FaultTrack, wrongful_isolations

    pipe = FaultTrack(fault(1800, Sector.WATER, FaultKind.PIPE_BREAK, "pipe:159"), "main-1", "main-1")
    line = FaultTrack(fault(600, Sector.ELECTRICITY, FaultKind.LINE_FAULT, "line-7"), "feeder-1", "feeder-1")
    line.onset, line.onset_block = 10.0, 40
    isolations = [(1, "main-1", 12),  # the storm day's: main-1 voted out before its pipe broke
                  (2, "feeder-1", 41),  # after the line fault began: rightful
                  (3, "pump-2", 50)]  # no fault there at all
    assert [w["proposal"] for w in wrongful_isolations(isolations, [pipe, line])] == [1, 3]
    pipe.onset, pipe.onset_block = 20.0, 60
    assert [w["proposal"] for w in wrongful_isolations(isolations, [pipe, line])] == [1, 3]  # still before it
    assert [w["proposal"] for w in wrongful_isolations([(4, "main-1", 61)], [pipe, line])] == []


def test_a_far_future_clock_sample_is_refused_and_a_silent_twin_has_no_clock() -> None:
    """One forged or mis-set service message must not freeze the clock (review of issue 16, finding 5)."""
    clocks = TwinClocks(speed=30.0)
    clocks.record("water", 1000.0, T0)
    clocks.record("water", 1002.0, T0 + timedelta(days=365))  # a year ahead in two wall seconds
    clocks.record("water", 1004.0, T0 + timedelta(seconds=120))  # the genuine next sample
    assert clocks.rejected == 1
    assert clocks.field_at("water", 1004.0) == T0.timestamp() + 120.0
    # a twin whose samples stopped: two of its gaps plus half a minute, then no field time at all
    assert clocks.field_at("water", 1004.0 + 2 * 4.0 + 29.0) is not None
    assert clocks.field_at("water", 1004.0 + 2 * 4.0 + 31.0) is None


def test_a_step_before_the_onset_shows_negative_not_zero() -> None:
    from core.messages import FaultKind, Sector
    from qeaims.scenarios.definitions import fault
    from qeaims.scenarios.runner import FaultTrack

    clocks = TwinClocks(speed=1.0)
    clocks.record("water", 1000.0, T0)
    clocks.record("water", 1060.0, T0 + timedelta(seconds=60))
    track = FaultTrack(fault(1800, Sector.WATER, FaultKind.PIPE_BREAK, "pipe:159"), "main-1", "main-1")
    track.onset_field = T0.timestamp() + 50.0
    assert track.field_since(1030.0, clocks) == -20.0  # 20 s before the fault: not a 0 s detection


def test_the_controllers_steps_sharing_a_kind_set_their_own_times() -> None:
    # run 4 of the storm day reported no response at all: the two steps of kind isolation-applied
    # were told apart by their kind, and the later name won for both
    from qeaims.scenarios.runner import track_attrs

    assert track_attrs("applied", {"step": "applied", "acks": []}) == ("response",)
    assert track_attrs("applied", {"step": "restored", "acks": []}) == ("restored",)
    assert track_attrs("applied", {"step": "applied", "restore_in_step": True}) == ("response", "restored")
    assert track_attrs("repaired", {"step": "repaired"}) == ("repaired",)
    assert track_attrs("cascade", {"step": "cascade"}) == ()
    assert track_attrs("applied", {"step": "forged"}) == ()


def test_the_detection_split_tells_the_fields_delay_from_the_processing_scaled_by_the_speed() -> None:
    from types import SimpleNamespace

    from core.messages import FaultKind, Sector
    from qeaims.scenarios.definitions import fault
    from qeaims.scenarios.report import _detection_split
    from qeaims.scenarios.runner import FaultTrack

    clocks = TwinClocks(speed=30.0)
    clocks.record("electricity", 1000.0, T0)
    clocks.record("electricity", 1010.0, T0 + timedelta(seconds=300))  # 30 field s a wall second
    track = FaultTrack(fault(300, Sector.ELECTRICITY, FaultKind.LINE_FAULT, "line-7"), "feeder-1", "feeder-1")
    track.onset_field = T0.timestamp() + 30.0
    track.sensed_field = T0.timestamp() + 35.0  # the first 5-s row after the fault
    track.detected = 1002.0  # mined at field +60 s: 25 field s (0.83 wall s) of processing after the reading
    constant = Pacemaker(send=lambda _b: None, speed=30.0, enabled=False)
    run = SimpleNamespace(tracks=[track], clocks=clocks, speed=30.0, pace=constant)
    split = _detection_split(run)  # type: ignore[arg-type]
    assert split["sensed_p95_s"] == 5.0
    assert split["at_speed_1_p95_s"] == round(5.0 + 25.0 / 30.0, 3)
    assert track.field_since(track.detected, clocks) == 30.0  # the headline: the run's own field clock
    untimed = FaultTrack(fault(300, Sector.WATER, FaultKind.PIPE_BREAK, "pipe:159"), "main-1", "main-1")
    assert _detection_split(SimpleNamespace(tracks=[untimed], clocks=clocks, speed=30.0,  # type: ignore[arg-type]
                                            pace=constant))["sensed_p95_s"] is None
    # the same processing inside a real-time window is its own field time: nothing to divide
    window = Pacemaker(send=lambda _b: None, speed=30.0, clock=lambda: 1001.0)
    window.start(1000.0)
    window.hold(True, "fault")
    slowed = SimpleNamespace(tracks=[track], clocks=clocks, speed=30.0, pace=window)
    assert _detection_split(slowed)["at_speed_1_p95_s"] == round(5.0 + 25.0, 3)  # type: ignore[arg-type]


def test_an_alert_detects_and_only_a_fault_or_intrusion_about_the_subject_confirms() -> None:
    """Detection is the first word about the fault (one camera's alert, an anomaly); confirmation is
    the first verdict a quorum acts on, about the same subject: a fault elsewhere confirms nothing."""
    from qeaims.scenarios.runner import ANOMALY, VERDICTS, first_decided

    fault_kind, intrusion_kind = (k for k in VERDICTS if k != ANOMALY)
    link = "link:n11-n12"
    verdicts = [({"subject": link}, 10.0, ANOMALY), ({"subject": "link:n10-n11"}, 11.0, fault_kind),
                ({"subject": link}, 12.0, ANOMALY), ({"subject": link}, 13.0, fault_kind),
                ({"subject": link}, 14.0, intrusion_kind)]
    assert first_decided(verdicts, link) == 13.0
    assert first_decided(verdicts[:3], link) is None  # alerts alone confirm nothing
    assert first_decided(verdicts, "link:n10-n11") == 11.0


def test_the_service_feed_integrates_the_flows_it_is_told_into_volumes_over_the_counted_window() -> None:
    """Water's leak (m³/s) held from each message to the next becomes m³ lost, counted only between
    `begin` and `freeze`, as availability is; a non-flow figure or a non-finite one is not summed."""
    import json as _json

    from qeaims.scenarios.runner import ServiceFeed

    feed = ServiceFeed(port=1)  # never connected: only its bookkeeping is under test

    def say(seconds: int, leak: float | None) -> None:
        body = {"sector": "water", "at": (T0 + timedelta(seconds=seconds)).isoformat(), "availability": 0.9,
                "detail": {"leak_m3s": leak, "customers": 100.0}}
        feed._on_message("qeaims-svc/water", _json.dumps(body).encode())

    say(0, 0.5)  # before the play: not counted
    feed.begin()
    say(60, 0.2)
    say(120, 0.1)  # 60 s at 0.2
    say(180, None)  # 60 s at 0.1
    say(240, 0.3)  # the null figure is no flow
    feed.freeze()
    say(300, 0.3)
    assert feed.volumes_m3() == {"water": {"leak_m3": pytest.approx(0.2 * 60 + 0.1 * 60)}}
