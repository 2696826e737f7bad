"""A protection is undone only when no open isolation relies on it (`IsolationSteps._held_by_others`).

On the storm day feeder 1's loss opened the storm-tank diversion to protect lift station 1; the
station's duty pump then failed and its own plan needed the diversion too. Feeder 1 came back
first, and undoing its protection closed the gate mid-storm under a station with one pump.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from chain.commanded import commanded_assets
from chain.recorder import canonical_payload
from controller._controller_state import STEP_KINDS, Isolation
from controller._holds import holders
from controller._isolation_steps import IsolationSteps
from controller._plan_workers import PlanWorkers
from controller.commander import Ack
from controller.plans import ResponsePlan
from core.messages import ActuatorCommand, Sector

GATE = {"sector": "sewage", "asset": "orifice:OR1", "actuator": "orifice:OR1/gate", "action": "open"}


def _iso(proposal: int, node: str, sector: Sector, *, plan: Sequence[dict[str, Any]] = (),
         protected: Sequence[dict[str, Any]] = (), finished: bool = False, for_node: str = "lift-1") -> Isolation:
    steps: dict[str, tuple[int, dict[str, Any]]] = {
        "plan": (1, {"isolate": {"commands": list(plan)}, "restore": None}),
        "cascade": (2, {"protect": [{"node": for_node, "command": p} for p in protected]}),
        "applied": (3, {"protected": list(protected)}),
    }
    if finished:
        steps["reintegrated"] = (4, {})
    return Isolation(proposal, node, sector, "asset", 3, steps)


def _held(isolations: list[Isolation], iso: Isolation, spec: dict[str, Any]) -> bool:
    owner = SimpleNamespace(isolations={i.proposal: i for i in isolations})
    return IsolationSteps._held_by_others(owner, iso, spec)  # type: ignore[arg-type]


def test_a_protection_another_open_isolation_commanded_stays() -> None:
    feeder = _iso(1, "feeder-1", Sector.ELECTRICITY, protected=[GATE])
    lift = _iso(3, "lift-1", Sector.SEWAGE, plan=[{"actuator": "pump:P2/drive", "action": "start"}, GATE])
    assert _held([feeder, lift], feeder, GATE)


def test_a_protection_stays_while_the_node_it_protected_is_isolated() -> None:
    # the lift station's own plan was made on a dry model and did not ask for the diversion
    feeder = _iso(1, "feeder-1", Sector.ELECTRICITY, protected=[GATE])
    lift = _iso(3, "lift-1", Sector.SEWAGE, plan=[{"actuator": "pump:P2/drive", "action": "start"}])
    assert _held([feeder, lift], feeder, GATE)


def test_a_protection_nobody_else_needs_is_undone() -> None:
    feeder = _iso(1, "feeder-1", Sector.ELECTRICITY, protected=[GATE])
    lift_back = _iso(3, "lift-1", Sector.SEWAGE, plan=[GATE], finished=True)  # already reintegrated
    other = _iso(4, "dc-primary", Sector.BANKING, plan=[{"actuator": "switch-1/route", "action": "failover"}])
    assert not _held([feeder, lift_back, other], feeder, GATE)


def test_the_opposite_action_does_not_hold_it() -> None:
    feeder = _iso(1, "feeder-1", Sector.ELECTRICITY, protected=[GATE])
    closing = _iso(5, "wwtp-1", Sector.SEWAGE, plan=[{**GATE, "action": "close"}])
    assert not _held([feeder, closing], feeder, GATE)


# --- the reintegration itself: what is sent, what waits, and who sends it later -----------------

HOSPITAL_BACKUP = {"sector": "healthcare", "asset": "hospital-1", "actuator": "hospital-1/power", "action": "backup"}
CONTROLLER = "0x" + "c0" * 20


def _acked(spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "ok": True, "already": False, "answer": "acked", "error": ""}


class _Field:
    """Devices that answer every command at once, and remember what they were sent."""

    def __init__(self) -> None:
        self.posted: list[ActuatorCommand] = []

    def post(self, commands: list[ActuatorCommand]) -> None:
        self.posted += commands

    def answers(self, commands: list[ActuatorCommand], *, timeout_s: float, skip: Any = ()) -> list[Ack | None]:
        return [Ack(c.decision_ref, f"{c.actuator_id} {c.action}", True, "", "") for c in commands]

    def offline(self, sectors: Any) -> frozenset[Sector]:
        return frozenset()

    def send_all(self, commands: list[ActuatorCommand], *, timeout_s: float) -> list[Ack | None]:
        self.post(commands)
        return self.answers(commands, timeout_s=timeout_s)

    def sent(self, ref: str) -> list[str]:
        return [f"{c.actuator_id} {c.action}" for c in self.posted if c.decision_ref == ref]


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, bytes]] = []

    def record(self, kind: int, node: bytes, payload: bytes) -> int:
        self.events.append((kind, payload))
        return len(self.events)

    write_ahead = record  # the steps write ahead, note, then flush

    def flush(self) -> None:
        pass


class _Steps(IsolationSteps):
    """The isolation steps with devices that always answer and a planner that returns fixed plans."""

    def __init__(self, isolations: list[Isolation], reintegrate: dict[str, list[dict[str, Any]]]) -> None:
        self.isolations = {i.proposal: i for i in isolations}
        self.commander = _Field()  # type: ignore[assignment]
        self.recorder = _Recorder()  # type: ignore[assignment]
        self.me = CONTROLLER

        def planner(sector: Sector, purpose: str, asset: str, sent: Sequence[dict[str, Any]]) -> ResponsePlan:
            commands = tuple(ActuatorCommand(sector=sector, asset_id=str(c["asset"]), actuator_id=str(c["actuator"]),
                                             action=str(c["action"]), value=c.get("value"))
                             for c in reintegrate.get(asset, []))
            return ResponsePlan(sector, asset, purpose, commands)

        self.planner = planner
        self.plans = PlanWorkers(planner, inline=True)


def _open(proposal: int, node: str, sector: Sector, *, plan: Sequence[dict[str, Any]] = (),
          protected: Sequence[dict[str, Any]] = (), for_node: str = "lift-1") -> Isolation:
    iso = _iso(proposal, node, sector, plan=plan, protected=[_acked(p) for p in protected], for_node=for_node)
    iso.asset = node
    iso.steps["repaired"] = (5, {})
    return iso


def _commanded(steps: _Steps, sector: str) -> dict[str, str]:
    """What the oracles read as held in a protective state, from the events the controller recorded."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE events (oracle TEXT, kind INTEGER, payload BLOB, block INTEGER, log_index INTEGER)")
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, 0)",
                   [(CONTROLLER, kind, payload, n) for n, (kind, payload) in enumerate(steps.recorder.events)])  # type: ignore[attr-defined]
    return commanded_assets(db, sector, lambda who: who == CONTROLLER)


def test_a_held_undo_is_sent_when_the_isolation_that_held_it_comes_back() -> None:
    # feeder 2's loss moved hospital 1 to its generator; the hospital's ATS then failed and it was
    # isolated too. Feeder 2 came back first: its undo waits for the hospital. The hospital's own
    # plan, made on a fresh model with the grid up, never asks for the grid back.
    feeder = _open(1, "feeder-2", Sector.ELECTRICITY, protected=[HOSPITAL_BACKUP], for_node="hospital-1")
    hospital = _open(2, "hospital-1", Sector.HEALTHCARE, plan=[{"asset": "hospital-1", "actuator": "hospital-1/admissions",
                                                               "action": "divert"}])
    steps = _Steps([feeder, hospital], {"hospital-1": [{"asset": "hospital-1", "actuator": "hospital-1/admissions",
                                                         "action": "restore"}]})
    steps._reintegrate(feeder, 10)
    assert "hospital-1/power restore" not in steps.commander.sent("proposal:10")  # type: ignore[attr-defined]

    steps._reintegrate(hospital, 11)
    assert steps.commander.sent("proposal:11") == [  # type: ignore[attr-defined]
        "hospital-1/admissions restore", "hospital-1/power restore"]


def test_a_held_undo_survives_a_restart() -> None:
    feeder = _open(1, "feeder-2", Sector.ELECTRICITY, protected=[HOSPITAL_BACKUP], for_node="hospital-1")
    hospital = _open(2, "hospital-1", Sector.HEALTHCARE)
    _Steps([feeder, hospital], {})._reintegrate(feeder, 10)
    # a new controller reads its steps back from the outbox (here: the same payloads, as JSON)
    again = [Isolation(i.proposal, i.node, i.sector, i.asset, i.criticality, json.loads(json.dumps(i.steps)))
             for i in (feeder, hospital)]
    steps = _Steps(again, {})
    steps._reintegrate(again[1], 11)
    assert steps.commander.sent("proposal:11") == ["hospital-1/power restore"]  # type: ignore[attr-defined]


def test_a_held_undo_waits_for_every_isolation_that_holds_it() -> None:
    feeder = _open(1, "feeder-2", Sector.ELECTRICITY, protected=[HOSPITAL_BACKUP], for_node="hospital-1")
    hospital = _open(2, "hospital-1", Sector.HEALTHCARE)
    feeder3 = _open(4, "feeder-3", Sector.ELECTRICITY, protected=[HOSPITAL_BACKUP], for_node="hospital-1")
    steps = _Steps([feeder, hospital, feeder3], {})
    steps._reintegrate(feeder, 10)
    steps._reintegrate(hospital, 11)  # feeder 3 is still out: the hospital stays on its generator
    assert steps.commander.sent("proposal:11") == []  # type: ignore[attr-defined]
    steps._reintegrate(feeder3, 12)  # feeder 3's own undo and feeder 2's held one: one command
    assert steps.commander.sent("proposal:12") == ["hospital-1/power restore"]  # type: ignore[attr-defined]
    later = _open(5, "atm-cluster-1", Sector.BANKING)
    steps.isolations[5] = later
    steps._reintegrate(later, 13)  # released once, never again
    assert steps.commander.sent("proposal:13") == []  # type: ignore[attr-defined]


def test_a_reintegrate_plan_does_not_undo_what_another_open_isolation_holds() -> None:
    # lift station 1 is repaired while feeder 1 is still out: its plan (a fresh model, feeder up)
    # closes the diversion that feeder 1's protection opened for it
    feeder = _open(1, "feeder-1", Sector.ELECTRICITY, protected=[GATE])
    lift = _open(3, "lift-1", Sector.SEWAGE, plan=[{"asset": "pump:P2", "actuator": "pump:P2/drive", "action": "start"}])
    steps = _Steps([feeder, lift], {"lift-1": [{"asset": "pump:P2", "actuator": "pump:P2/drive", "action": "auto"},
                                                {**GATE, "action": "close"}]})
    steps._reintegrate(lift, 10)
    assert steps.commander.sent("proposal:10") == ["pump:P2/drive auto"]  # type: ignore[attr-defined]

    steps._reintegrate(feeder, 11)  # feeder 1's undo and the station's held close: one command
    assert steps.commander.sent("proposal:11") == ["orifice:OR1/gate close"]  # type: ignore[attr-defined]


def test_the_oracles_see_a_held_protection_as_commanded_until_it_is_undone() -> None:
    # `chain.commanded` dropped an isolation's protections at its reintegrated event, held or not:
    # with the gate still open for the lift station, the oracles read the storm tank filling as a fault
    feeder = _open(1, "feeder-1", Sector.ELECTRICITY, protected=[GATE])
    lift = _open(3, "lift-1", Sector.SEWAGE)
    steps = _Steps([feeder, lift], {"lift-1": [{**GATE, "action": "close"}]})
    steps.recorder.events.append((STEP_KINDS["applied"], canonical_payload(  # type: ignore[attr-defined]
        {"proposal": 1, "step": "applied", "protected": feeder.steps["applied"][1]["protected"]})))
    steps._reintegrate(feeder, 10)
    assert _commanded(steps, "sewage") == {"orifice:OR1": "orifice:OR1/gate open (isolation 1)"}
    steps._reintegrate(lift, 11)
    assert steps.commander.sent("proposal:11") == ["orifice:OR1/gate close"]  # type: ignore[attr-defined]
    assert _commanded(steps, "sewage") == {}


def _switch(name: str, action: str) -> dict[str, Any]:
    return {"asset": name, "actuator": name, "action": action}


def test_a_restore_plan_does_not_switch_back_what_another_open_isolation_opened_around_its_fault() -> None:
    # line 3's isolation opened sw-3 and sw-4 around its fault; line 9's restore plan, made on a fresh
    # model that knows only line 9's fault, picks up its dead buses through sw-4: closing it would
    # re-energise line 3's faulted section. It waits, and is not sent later: it served a field that
    # will have changed by the time line 3 comes back (line 9's reintegration plans from then on).
    line3 = _open(1, "line-3", Sector.ELECTRICITY, plan=[_switch("sw-3", "open"), _switch("sw-4", "open")])
    line9 = _iso(2, "line-9", Sector.ELECTRICITY, plan=[_switch("sw-9", "open")])
    del line9.steps["applied"]
    line9.steps["plan"][1]["restore"] = {"commands": [_switch("sw-4", "close"), _switch("tie-33", "close")]}
    steps = _Steps([line3, line9], {})
    steps.crews = SimpleNamespace(assign=lambda *_: None)  # type: ignore[assignment]
    steps._advance(line9)
    assert steps.commander.sent("proposal:2") == ["sw-9 open"]  # type: ignore[attr-defined]
    assert [c for c in steps.commander.posted if c.decision_ref != "proposal:2"] == [  # type: ignore[attr-defined]
        ActuatorCommand(sector=Sector.ELECTRICITY, asset_id="tie-33", actuator_id="tie-33", action="close",
                        decision_ref=f"event:{CONTROLLER}:{line9.steps['plan'][0]}")]
    assert [(h["actuator"], h["held_by"]) for h in line9.steps["applied"][1]["held"]] == [("sw-4", [1])]

    steps._reintegrate(line3, 10)  # line 3's own plan closes sw-4 when it is repaired; nothing else sends it
    assert steps.commander.sent("proposal:10") == []  # type: ignore[attr-defined]
    # a restore command that was never sent holds nothing: line 9 does not need sw-4 closed
    assert not holders([line3, line9], line3, {"sector": "electricity", **_switch("sw-4", "open")})


def test_a_restore_made_by_the_worker_holds_what_another_open_isolation_opened_around_its_fault() -> None:
    # as above, with the restore planned in its own step: the response (line 9 cut off) goes out
    # first and holds nothing back; the restore plan follows and sw-4 waits in its ``restored`` step
    line3 = _open(1, "line-3", Sector.ELECTRICITY, plan=[_switch("sw-3", "open"), _switch("sw-4", "open")])
    line9 = _iso(2, "line-9", Sector.ELECTRICITY, plan=[_switch("sw-9", "open")])
    del line9.steps["applied"], line9.steps["plan"][1]["restore"]
    line9.asset = "line-9"
    steps = _Steps([line3, line9], {"line-9": [_switch("sw-4", "close"), _switch("tie-33", "close")]})
    steps.crews = SimpleNamespace(assign=lambda *_: None)  # type: ignore[assignment]
    steps._advance(line9)
    assert steps.commander.sent("proposal:2") == ["sw-9 open"]  # type: ignore[attr-defined]
    assert "held" not in line9.steps["applied"][1] and line9.steps["applied"][0] < line9.steps["restore-plan"][0]
    assert steps.commander.sent(f"event:{CONTROLLER}:{line9.steps['restore-plan'][0]}") == [  # type: ignore[attr-defined]
        "tie-33 close"]
    assert [(h["actuator"], h["held_by"]) for h in line9.steps["restored"][1]["held"]] == [("sw-4", [1])]
    # what line 9 holds from now on is what it sent: sw-9 open and tie-33 closed, not sw-4
    assert holders([line3, line9], line3, {"sector": "electricity", **_switch("tie-33", "open")}) == [2]
    assert not holders([line3, line9], line3, {"sector": "electricity", **_switch("sw-4", "open")})


def test_a_held_command_with_a_value_is_released_with_it() -> None:
    # water: the main's repair would set the pumps back to normal speed while the other break's
    # restore still runs them at full speed
    boost = {"asset": "pump:P1", "actuator": "pump:P1", "action": "speed", "value": 1.2}
    pipe = _open(1, "pipe-7", Sector.WATER, plan=[boost])
    main = _open(2, "main-3", Sector.WATER)
    steps = _Steps([pipe, main], {"main-3": [{**boost, "value": 1.0}]})
    steps._reintegrate(main, 10)
    assert steps.commander.sent("proposal:10") == []  # type: ignore[attr-defined]
    steps._reintegrate(pipe, 11)
    assert [(c.actuator_id, c.value) for c in steps.commander.posted if c.decision_ref == "proposal:11"] == [  # type: ignore[attr-defined]
        ("pump:P1", 1.0)]
    assert pipe.steps["reintegrated"][1]["released"][0]["from"] == 2


# --- review (review-ctl): the restore's own steps at every restart point ------------------------


def _new_format(proposal: int, node: str) -> Isolation:
    """An isolation planned by this version (its ``plan`` holds no restore), not applied yet."""
    iso = _iso(proposal, node, Sector.ELECTRICITY, plan=[_switch(f"sw-{node[-1]}", "open")])
    del iso.steps["applied"], iso.steps["plan"][1]["restore"]
    iso.asset = node
    return iso


class _FieldWithCrews(_Field):
    """Devices as `_Field`, a field that takes the crew's repair, and actuators that refuse for good."""

    def __init__(self, refusing: Sequence[str] = ()) -> None:
        super().__init__()
        self.refusing = set(refusing)

    def answers(self, commands: list[ActuatorCommand], *, timeout_s: float, skip: Any = ()) -> list[Ack | None]:
        return [Ack(c.decision_ref, f"{c.actuator_id} {c.action}", False, "refused: breaker locked out", "")
                if c.actuator_id in self.refusing else a
                for c, a in zip(commands, super().answers(commands, timeout_s=timeout_s), strict=True)]

    def control(self, sector: Sector, control: Any) -> Ack:
        return Ack("", "", True, "", "")


def _with_crews(steps: _Steps, now: list[float], refusing: Sequence[str] = ()) -> None:
    from controller.crews import CrewPool

    steps.crews = CrewPool()
    steps.speed = 1e6  # the crew's time is up at once
    steps._clock = lambda: now[0]
    steps.field_clock = None  # no view of the field: the wall clock and the speed decide
    steps.identity = SimpleNamespace(account=None)  # type: ignore[assignment]
    steps.client = SimpleNamespace(transact=lambda *_: None)  # type: ignore[assignment]
    steps.commander = _FieldWithCrews(refusing)  # type: ignore[assignment]


def test_a_restore_plan_the_model_cannot_make_does_not_hold_up_the_repair() -> None:
    line9 = _new_format(2, "line-9")
    steps = _Steps([line9], {})

    def planner(sector: Sector, purpose: str, asset: str, sent: Sequence[dict[str, Any]]) -> ResponsePlan:
        if purpose == "restore":
            raise IndexError("list index out of range")
        return ResponsePlan(sector, asset, purpose, ())

    steps.plans = PlanWorkers(planner, inline=True)
    now = [0.0]
    _with_crews(steps, now)
    steps._advance(line9)
    now[0] = 10.0
    steps._advance(line9)
    assert "error" in line9.steps["restore-plan"][1] and line9.steps["restored"][1]["acks"] == []
    assert "repaired" in line9.steps


def test_a_restart_between_the_restore_plan_and_its_commands_sends_them_before_the_repair() -> None:
    # the controller stopped after recording ``restore-plan``: the restarted one sends that plan's
    # commands (under that event), and the crew's repair still waits for them
    line9 = _new_format(2, "line-9")
    steps = _Steps([line9], {"line-9": [_switch("tie-33", "close")]})
    now = [0.0]
    _with_crews(steps, now)
    steps.plans = SimpleNamespace(ask=lambda *_a, **_k: None)  # type: ignore[assignment]  # still being made
    steps._advance(line9)
    now[0] = 10.0
    steps._advance(line9)
    assert "applied" in line9.steps and "restore-plan" not in line9.steps and "repaired" not in line9.steps
    # the restore plan recorded, then the stop: nothing sent under it yet
    line9.steps["restore-plan"] = (7, {"restore": {"commands": [_switch("tie-33", "close")]}})
    restarted = _Steps([line9], {})
    _with_crews(restarted, now)
    restarted._advance(line9)
    assert restarted.commander.sent(f"event:{CONTROLLER}:7") == ["tie-33 close"]  # type: ignore[attr-defined]
    assert "restored" in line9.steps and "repaired" in line9.steps


def test_a_restore_command_refused_for_good_does_not_hold_up_the_repair() -> None:
    from core.errors import QeaimsError

    line9 = _new_format(2, "line-9")
    steps = _Steps([line9], {"line-9": [_switch("tie-33", "close")]})
    now = [0.0]
    _with_crews(steps, now, refusing=["tie-33"])
    for minute in range(3):
        now[0] = 60.0 * minute
        with contextlib.suppress(QeaimsError):
            steps._advance(line9)
    assert "repaired" in line9.steps
    [refused] = line9.steps["restored"][1]["acks"]  # the refusal is on record, for the operators and the audit
    assert (refused["what"], refused["answer"]) == ("tie-33 close", "refused")


# --- review (release): a refused restore command after fd7b6a7 ---------------------------------


def test_a_refused_restore_command_holds_nothing_and_is_not_undone() -> None:
    line9 = _new_format(2, "line-9")
    line3 = _open(1, "line-3", Sector.ELECTRICITY, plan=[_switch("sw-3", "open")])
    steps = _Steps([line3, line9], {"line-9": [_switch("tie-33", "close")]})
    now = [0.0]
    _with_crews(steps, now, refusing=["tie-33"])
    for minute in range(3):
        now[0] = 60.0 * minute
        steps._advance(line9)
    assert "repaired" in line9.steps
    assert _commanded(steps, "electricity") == {"sw-9": "sw-9 open (isolation 2)"}  # the oracles: tie-33 never moved
    # the controller agrees: line 3's reintegration may switch tie-33 as its own plan says
    assert not holders([line3, line9], line3, {"sector": "electricity", **_switch("tie-33", "open")})
