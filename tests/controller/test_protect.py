"""controller.protect and the controller's tolerance of a plan the model cannot make."""

from __future__ import annotations

import time

import pytest

from bus.mqtt import EmbeddedBroker
from chain.deploy import dev_controller
from chain.quorum import QuorumClient
from controller.commander import Commander
from controller.node import Controller
from controller.protect import inverse, protections
from keys.ids import to_bytes32
from sectors.graph import at_risk
from tests.conftest import free_port
from tests.support import isolate_by_quorum


def commands(node: str) -> dict[str, tuple[str, str]]:
    return {p.node: (p.command["actuator"], p.command["action"]) for p in protections(at_risk(node)) if p.command}


def test_what_each_feeder_puts_at_risk_gets_its_protective_action() -> None:
    assert commands("feeder-1") == {"atm-cluster-1": ("atm-cluster-1/mode", "drain"),
                                    "lift-1": ("orifice:OR1/gate", "open")}
    assert commands("feeder-2") == {"dc-primary": ("switch-1/route", "failover")}  # its switch, once
    assert commands("feeder-4") == {"clinic-1": ("clinic-1/power", "backup")}
    # a data centre's own isolation fails the switch over in its plan: its ATMs are not drained
    assert commands("dc-primary") == {}
    # lift-2 is not the station the sewage twin's diversion gate serves
    assert "lift-2" not in commands("feeder-4")


def test_protections_keep_the_cascade_priority_and_advise_where_no_device_can_act() -> None:
    listed = protections(at_risk("feeder-1"))
    assert [p.node for p in listed] == [r.node for r in at_risk("feeder-1")]
    hospital = next(p for p in listed if p.node == "hospital-1")
    assert hospital.command is None and hospital.via == "water" and "tanker" in hospital.advice


@pytest.mark.parametrize(("actuator", "action", "undo"), [
    ("hospital-1/power", "backup", "restore"), ("atm-cluster-1/mode", "drain", "restore"),
    ("switch-1/route", "failover", "failback"), ("orifice:OR1/gate", "open", "close"),
])
def test_every_protective_command_has_an_inverse(actuator: str, action: str, undo: str) -> None:
    spec = {"sector": "banking", "asset": actuator.split("/")[0], "actuator": actuator, "action": action}
    assert inverse(spec) == {**spec, "action": undo}


def test_a_plan_the_model_cannot_make_is_recorded_and_the_isolation_goes_on(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain

    def broken(*_: object) -> None:
        raise IndexError("list index out of range")  # what a simulation library bug looks like

    pid = isolate_by_quorum(chain, "banking", "dc-primary", "dc-primary")
    port = free_port()
    with EmbeddedBroker(port=port), Commander(port=port) as commander:
        ctl = Controller(settings=chain.settings, client=chain.client, deployment=chain.deployment,
                         identity=dev_controller(chain.settings), commander=commander, planner=broken, speed=1.0)
        deadline = time.monotonic() + 60
        while pid not in ctl.isolations or "dispatched" not in ctl.isolations[pid].steps:
            assert time.monotonic() < deadline, "the isolation stalled on the failed plan"
            ctl.run_once()
        steps = ctl.isolations[pid].steps
        ctl.close()
    assert steps["plan"][1]["error"] == "IndexError: list index out of range"
    assert steps["plan"][1]["isolate"] is None and steps["applied"][1]["acks"] == []
    assert QuorumClient(chain.client).node_status(to_bytes32("dc-primary")) == "repairing"  # a crew goes regardless
