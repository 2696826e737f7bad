"""The cybersecurity response on a real chain and a live twin: a quorum of intrusion verdicts gets a
spoofed sensor quarantined, a technician removes the tampering, the quarantine is lifted; fewer
verdicts, or verdicts from a quarantined oracle, change nothing."""

from __future__ import annotations

import json
import time

from bus.mqtt import EmbeddedBroker
from chain.deploy import dev_controller
from chain.recorder import canonical_payload
from controller.commander import Commander
from controller.cyber import IntrusionTally
from controller.node import Controller
from controller.planning import TwinPlanner
from core.kinds import kind_by_name
from core.messages import Sector
from keys.ids import to_bytes32
from sectors.remote import SimControl
from tests.chain.test_ledger_and_audit import audit
from tests.conftest import free_port
from tests.oracles.test_oracle_node import ledger_events
from tests.support import oracle, recorder, running_twin
from vaults.onchain import SealWatch

SENSOR = "switch-1/latency_p95_ms"


def intrusion(sensor: str | None = SENSOR) -> bytes:
    """An intrusion verdict's payload as `oracles.node` writes it (sensors: [[name, share]])."""
    return canonical_payload({"episode": "switch-1|intrusion|1", "subject": "switch-1", "sector": "banking",
                              "asset": "switch-1", "verdict": "intrusion", "score": 9.0, "threshold": 1.0,
                              "sensors": [[sensor, 0.97]] if sensor else [], "reason": "spoofed or failed sensor"})


def test_the_tally_counts_distinct_active_oracles_and_ignores_verdicts_without_a_sensor() -> None:
    tally = IntrusionTally()
    body = json.loads(intrusion())
    tally.add("0xA", 1, body)
    tally.add("0xa", 2, body)  # the same oracle again (another episode): still one voice
    tally.add("0xB", 1, json.loads(intrusion(None)))  # findings only: names no sensor
    assert tally.quorate({"0xa", "0xb"}, {"banking": 2}) == []
    tally.add("0xB", 3, body)
    [q] = tally.quorate({"0xa", "0xb"}, {"banking": 2})
    # each oracle's latest verdict is its word now (a fresh episode after one found moot)
    assert (q.sensor, q.node, q.evidence) == (SENSOR, "switch-1", [("0xa", 2), ("0xb", 3)])
    assert tally.quorate({"0xa"}, {"banking": 2}) == []  # a quarantined oracle's word does not count


def test_the_tally_counts_only_oracles_of_the_sensors_sector() -> None:
    """An oracle of another sector that claims `sector: banking` in its verdict does not count for
    banking's quorum (the audit's recount refuses such a quarantine, so the controller must not record one)."""
    tally = IntrusionTally()
    body = json.loads(intrusion())
    tally.add("0xa", 1, body)
    tally.add("0xe", 1, body)  # a water oracle naming a banking sensor
    assert tally.quorate({"0xa": "banking", "0xe": "water"}, {"banking": 2}) == []
    tally.add("0xb", 1, body)
    [q] = tally.quorate({"0xa": "banking", "0xb": "banking", "0xe": "water"}, {"banking": 2})
    assert q.evidence == [("0xa", 1), ("0xb", 1)]


def test_a_quorum_of_intrusion_verdicts_quarantines_the_sensor_until_a_technician_fixed_it(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    port = free_port()
    with EmbeddedBroker(port=port), running_twin(chain, Sector.BANKING, port) as live, \
            Commander(port=port) as commander:
        assert commander.control(Sector.BANKING, SimControl(op="inject-attack", kind="bias", target=SENSOR,
                                                            params={"magnitude": 400.0})).ok
        assert SENSOR in live.twin.attacks
        voters = [oracle(chain.settings, "banking", i) for i in (1, 2, 3)]
        for voter in voters[:2]:
            recorder(chain.client, chain.settings, voter).record(kind_by_name("intrusion"),
                                                                 to_bytes32("switch-1"), intrusion())
        ctl = _controller(chain, commander)
        ctl.run_once()
        assert ctl.quarantines == {}  # two of four banking oracles are not the quorum
        recorder(chain.client, chain.settings, voters[2]).record(kind_by_name("intrusion"),
                                                                 to_bytes32("switch-1"), intrusion())
        ctl.run_once()
        [q] = ctl.quarantines.values()
        assert q.sensor == SENSOR and len(q.evidence) == 3 and not q.lifted
        seal = SealWatch(chain.client, "banking")
        assert seal.state().sealed and SENSOR in seal.state().reason  # banking's vault seals with the quarantine
        deadline = time.monotonic() + 30
        while not q.lifted:
            assert time.monotonic() < deadline, "the quarantine was never lifted"
            time.sleep(0.2)
            ctl.run_once()
        assert SENSOR not in live.twin.attacks  # the technician removed the tampering in the field
        assert not seal.state().sealed  # and unseals once the last of banking's quarantines is lifted
        ctl.close()
        again = _controller(chain, commander)
        again.run_once()  # a restart re-reads its quarantines from its outbox: nothing is recorded twice
        again.close()
    me = dev_controller(chain.settings).address.lower()
    states = [(p["state"], p["sensor"]) for o, _, p in ledger_events(chain, "sensor-quarantine") if o.lower() == me]
    assert states == [("quarantined", SENSOR), ("lifted", SENSOR)]
    seals = [(p["vault"], p["sealed"]) for o, _, p in ledger_events(chain, "vault-seal") if o.lower() == me]
    assert seals == [("banking", True), ("banking", False)]  # the restart sealed nothing again
    quarantined = next(p for o, _, p in ledger_events(chain, "sensor-quarantine") if p["state"] == "quarantined")
    assert sorted(o for o, _ in quarantined["evidence"]) == sorted(v.address.lower() for v in voters)
    assert quarantined["required"] == 3
    assert audit(chain).ok  # an auditor recounts the quorum from chain data alone
    # a quarantine that claims a quorum it did not have is caught by the same recount
    forged = {**quarantined, "evidence": quarantined["evidence"][:2]}
    recorder(chain.client, chain.settings, dev_controller(chain.settings)).record(
        kind_by_name("sensor-quarantine"), to_bytes32("switch-1"), canonical_payload(forged))
    [problem] = audit(chain).invalid
    assert "cites 2 matching intrusion verdicts, needs 3" in problem["reason"]


TECHNICIAN_SPEED = 3600.0  # the technician's hour passes in a second


def _controller(chain, commander: Commander | None = None) -> Controller:  # type: ignore[no-untyped-def]
    """The controller on `chain`, its technician's hour a second; with no broker unless given one."""
    return Controller(settings=chain.settings, client=chain.client, deployment=chain.deployment,
                      identity=dev_controller(chain.settings), commander=commander or Commander(port=1),
                      planner=TwinPlanner(), speed=TECHNICIAN_SPEED)


def test_a_sensor_of_a_device_the_controller_holds_commanded_is_not_quarantined(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    # the storm day diverted hospital-2's admissions; between the repair and the reintegration the
    # oracles called its `diverting` flag falsified and the controller quarantined a healthy sensor.
    # Here the switch's rate limit is held by the controller's isolation 7: its reading is commanded
    chain = fresh_chain
    held = {"sector": "banking", "asset": "switch-1", "actuator": "switch-1/ratelimit", "action": "limit",
            "ok": True, "already": False, "answer": "acked", "error": ""}
    recorder(chain.client, chain.settings, dev_controller(chain.settings)).record(
        kind_by_name("isolation-applied"), to_bytes32("switch-1"),
        canonical_payload({"proposal": 7, "step": "applied", "node": "switch-1", "asset": "switch-1",
                           "acks": [held], "protected": []}))
    voters = [oracle(chain.settings, "banking", i) for i in (1, 2, 3)]
    for voter in voters:
        recorder(chain.client, chain.settings, voter).record(kind_by_name("intrusion"), to_bytes32("switch-1"),
                                                             intrusion("switch-1/ratelimit"))
    ctl = _controller(chain)
    try:
        ctl.run_once()
        assert ctl.quarantines == {}  # a quorum named it, but it reads what the city commanded
        # the reintegration gives the device back: from then on the same quorum quarantines it
        recorder(chain.client, chain.settings, dev_controller(chain.settings)).record(
            kind_by_name("reintegrated"), to_bytes32("switch-1"),
            canonical_payload({"proposal": 7, "step": "reintegrated", "node": "switch-1", "asset": "switch-1"}))
        ctl.run_once()
        assert [q.sensor for q in ctl.quarantines.values()] == ["switch-1/ratelimit"]
    finally:
        ctl.close()


def _observed(sensor: str, at: str) -> bytes:
    return canonical_payload({**json.loads(intrusion(sensor)), "observed_at": at})


def test_a_verdict_on_the_release_of_a_commanded_state_quarantines_nothing_a_fresh_one_does(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    # the storm day (run 5): hospital-2's admissions were taken back at 02:24:30; the 02:25:00 row
    # showed its `diverting` flag jump 1 → 0, which four oracles called falsified, and the controller,
    # no longer holding the flag, quarantined a healthy sensor. Verdicts on the release's first
    # rows are the release itself; a verdict on a later row (a fresh episode) is a spoof.
    chain = fresh_chain
    _held_then_released(chain, "2025-01-01T02:24:30+00:00")
    voters = [oracle(chain.settings, "banking", i) for i in (1, 2, 3)]
    for voter, at in zip(voters, ("02:25:00", "02:25:00", "02:25:30"), strict=True):  # 2 report periods
        recorder(chain.client, chain.settings, voter).record(
            kind_by_name("intrusion"), to_bytes32("switch-1"), _observed("switch-1/ratelimit", f"2025-01-01T{at}+00:00"))
    ctl = _controller(chain)
    try:
        ctl.run_once()
        assert ctl.quarantines == {}  # a quorum judged the release's own rows
        # a quorum of verdicts on a later row (fresh episodes) is a spoof: taken
        for voter in voters:
            recorder(chain.client, chain.settings, voter).record(
                kind_by_name("intrusion"), to_bytes32("switch-1"), _observed("switch-1/ratelimit", "2025-01-01T02:40:00+00:00"))
        ctl.run_once()
        assert [q.sensor for q in ctl.quarantines.values()] == ["switch-1/ratelimit"]
    finally:
        ctl.close()


def _held_then_released(chain, release_at: str) -> None:  # type: ignore[no-untyped-def]
    """switch-1's rate limit held by the controller's isolation 7, then given back: its device
    answered the undo at `release_at` (the field's clock, as the device reports it)."""
    held = {"sector": "banking", "asset": "switch-1", "actuator": "switch-1/ratelimit", "action": "limit",
            "ok": True, "already": False, "answer": "acked", "error": ""}
    ctl_recorder = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    ctl_recorder.record(kind_by_name("isolation-applied"), to_bytes32("switch-1"),
                        canonical_payload({"proposal": 7, "step": "applied", "node": "switch-1", "asset": "switch-1",
                                           "acks": [held], "protected": []}))
    ctl_recorder.record(kind_by_name("reintegrated"), to_bytes32("switch-1"),
                        canonical_payload({"proposal": 7, "step": "reintegrated", "node": "switch-1",
                                           "asset": "switch-1", "acks": [{**held, "action": "unlimit",
                                                                         "at": release_at}], "unprotected": []}))


def _quarantined_after(chain, sensor: str, observed: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Three banking oracles name `sensor` in intrusion verdicts on the reading at `observed`; the
    sensors the controller quarantines on one pass."""
    for voter in [oracle(chain.settings, "banking", i) for i in (1, 2, 3)]:
        recorder(chain.client, chain.settings, voter).record(
            kind_by_name("intrusion"), to_bytes32("switch-1"), _observed(sensor, observed))
    ctl = _controller(chain)
    try:
        ctl.run_once()
        return [q.sensor for q in ctl.quarantines.values()]
    finally:
        ctl.close()


def test_a_release_stamped_far_in_the_future_does_not_excuse_a_later_spoof(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    _held_then_released(fresh_chain, "2099-01-01T00:00:00+00:00")  # the real release: 2025-01-01T02:24:30Z
    # an hour after the real release, a spoof of the switch's latency: three oracles call it
    assert _quarantined_after(fresh_chain, SENSOR, "2025-01-01T03:30:00+00:00") == [SENSOR]


def test_a_spoof_begun_under_the_hold_on_another_sensor_is_quarantined_after_the_release(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    _held_then_released(fresh_chain, "2025-01-01T02:24:30+00:00")
    # the switch's latency spoofed from 01:00, under the hold of its rate limit, and still spoofed:
    # each oracle's one verdict of that episode judged the 01:00 row
    assert _quarantined_after(fresh_chain, SENSOR, "2025-01-01T01:00:00+00:00") == [SENSOR]


def test_a_spoof_well_after_the_release_is_quarantined(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """The control for the two above: with an honest release time, a spoof judged an hour later is
    taken, on each oracle's latest verdict, and the audit's recount accepts that evidence."""
    chain = fresh_chain
    _held_then_released(chain, "2025-01-01T02:24:30+00:00")
    for voter in [oracle(chain.settings, "banking", i) for i in (1, 2, 3)]:  # an older episode of the same sensor
        recorder(chain.client, chain.settings, voter).record(
            kind_by_name("intrusion"), to_bytes32("switch-1"), _observed(SENSOR, "2025-01-01T00:10:00+00:00"))
    assert _quarantined_after(chain, SENSOR, "2025-01-01T03:30:00+00:00") == [SENSOR]
    [evidence] = [p["evidence"] for _, _, p in ledger_events(chain, "sensor-quarantine") if p["state"] == "quarantined"]
    latest = {o.lower(): seq for o, seq, p in ledger_events(chain, "intrusion") if "03:30" in str(p["observed_at"])}
    assert dict(evidence) == latest  # type: ignore[call-overload]  # the fresh verdicts are the evidence
    assert audit(chain).ok  # type: ignore[no-untyped-call]


def test_a_sensor_spoofed_again_after_its_quarantine_was_lifted_is_quarantined_again(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    port = free_port()
    voters = [oracle(chain.settings, "banking", i) for i in (1, 2, 3)]

    def named_by_the_quorum(episode: int) -> None:
        body = {**json.loads(intrusion()), "episode": f"switch-1|intrusion|{episode}"}
        for voter in voters:
            recorder(chain.client, chain.settings, voter).record(kind_by_name("intrusion"), to_bytes32("switch-1"),
                                                                 canonical_payload(body))

    with EmbeddedBroker(port=port), running_twin(chain, Sector.BANKING, port), Commander(port=port) as commander:
        ctl = _controller(chain, commander)
        try:
            named_by_the_quorum(1)
            ctl.run_once()
            [q] = ctl.quarantines.values()
            deadline = time.monotonic() + 30
            while not q.lifted:
                assert time.monotonic() < deadline, "the quarantine was never lifted"
                time.sleep(0.2)
                ctl.run_once()
            # the attacker comes back after the technician left: a fresh episode, a fresh quorum
            assert commander.control(Sector.BANKING, SimControl(op="inject-attack", kind="bias", target=SENSOR,
                                                                params={"magnitude": 400.0})).ok
            named_by_the_quorum(2)
            ctl.run_once()
        finally:
            ctl.close()
    me = dev_controller(chain.settings).address.lower()
    states = [p["state"] for o, _, p in ledger_events(chain, "sensor-quarantine") if o.lower() == me]
    assert states == ["quarantined", "lifted", "quarantined"]
    assert audit(chain).ok  # type: ignore[no-untyped-call]  # the second quorum recounts from chain data


def test_a_silent_restore_device_does_not_stop_the_intrusion_response(fresh_chain, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import contextlib

    from controller._controller_state import Isolation
    from controller.commander import CommandTimeout

    chain = fresh_chain
    monkeypatch.setattr("controller._isolation_steps.COMMAND_TIMEOUT_S", 0.2)  # the 30 s wait, shortened
    for voter in [oracle(chain.settings, "banking", i) for i in (1, 2, 3)]:
        recorder(chain.client, chain.settings, voter).record(kind_by_name("intrusion"), to_bytes32("switch-1"),
                                                             intrusion())
    ctl = _controller(chain)
    tie = {"asset": "tie-33", "actuator": "tie-33", "action": "close"}
    # an isolation applied, its restore planned: tie-33's device does not answer (no broker: silence)
    ctl.isolations[99] = Isolation(99, "line-9", Sector.ELECTRICITY, "line-9", 5, {
        "plan": (1, {"isolate": {"commands": []}}), "cascade": (2, {"protect": []}),
        "applied": (3, {"acks": [], "protected": []}), "restore-plan": (4, {"restore": {"commands": [tie]}})})
    try:
        with contextlib.suppress(CommandTimeout):
            ctl.run_once()
        assert [q.sensor for q in ctl.quarantines.values()] == [SENSOR]
    finally:
        ctl.close()


def test_one_oracles_fresh_verdict_does_not_make_a_quorum_of_verdicts_on_the_release(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    _held_then_released(chain, "2025-01-01T02:24:30+00:00")
    voters = [oracle(chain.settings, "banking", i) for i in (1, 2, 3)]
    for voter in voters:  # the flag's jump at the release: three oracles call it falsified
        recorder(chain.client, chain.settings, voter).record(
            kind_by_name("intrusion"), to_bytes32("switch-1"), _observed("switch-1/ratelimit", "2025-01-01T02:25:00+00:00"))
    # one oracle (the compromised one) names it again, on a later row: the others saw nothing new
    recorder(chain.client, chain.settings, voters[2]).record(
        kind_by_name("intrusion"), to_bytes32("switch-1"), _observed("switch-1/ratelimit", "2025-01-01T02:40:00+00:00"))
    ctl = _controller(chain)
    try:
        ctl.run_once()
        assert ctl.quarantines == {}
    finally:
        ctl.close()
