"""A running twin obeys MQTT commands only for decisions that are on-chain, and takes simulation controls."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bus.mqtt import EmbeddedBroker
from chain.quorum import Action, QuorumClient
from core.messages import ActuatorCommand, Sector
from keys.ids import to_bytes32
from sectors.publish import TwinPublisher
from sectors.remote import ack_topic, chain_decision_check, cmd_topic, sim_topic
from sectors.runner import open_twin
from tests.conftest import free_port
from tests.support import oracle


def test_a_twin_switches_only_for_an_executed_proposal_and_acks_every_command(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    port = free_port()
    acks: list[dict[str, object]] = []
    got = threading.Condition()

    def on_ack(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with got:
            acks.append(json.loads(message.payload))
            got.notify_all()

    def send(topic: str, body: str, expect: int) -> dict[str, object]:
        controller.publish(topic, body, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while len(acks) < expect:
            host.apply_pending()
            with got:
                got.wait(0.1)
            assert time.monotonic() < deadline, "no acknowledgement"
        return acks[expect - 1]

    failover = ActuatorCommand(sector=Sector.BANKING, asset_id="switch-1", actuator_id="switch-1/route",
                               action="failover")
    with EmbeddedBroker(port=port), open_twin(Sector.BANKING) as runner, TwinPublisher(
            runner, port=port, decisions=chain_decision_check(chain.client)) as host:
        controller = paho.Client(CallbackAPIVersion.VERSION2, client_id="controller")
        controller.username_pw_set("controller")
        controller.on_message = on_ack
        controller.connect("127.0.0.1", port)
        controller.loop_start()
        controller.subscribe(ack_topic(Sector.BANKING), 1)
        time.sleep(0.5)
        try:
            no_ref = send(cmd_topic(Sector.BANKING), failover.model_dump_json(), 1)
            assert not no_ref["ok"] and "no decision_ref" in str(no_ref["error"])
            quorum = QuorumClient(chain.client)
            voters = [oracle(chain.settings, "banking", i) for i in (1, 2, 3)]
            pid = quorum.propose(voters[0], Action.ISOLATE, to_bytes32("dc-primary"),
                                 to_bytes32("fault:dc-primary"))
            early = send(cmd_topic(Sector.BANKING), failover.model_copy(
                update={"decision_ref": f"proposal:{pid}"}).model_dump_json(), 2)
            assert not early["ok"] and "not executed" in str(early["error"])  # one vote is not a decision
            assert runner.twin.service().active_dc == "dc-primary"  # nothing moved
            for voter in voters[1:]:
                quorum.vote(voter, pid)
            assert quorum.node_status(to_bytes32("dc-primary")) == "isolated"
            done = send(cmd_topic(Sector.BANKING), failover.model_copy(
                update={"decision_ref": f"proposal:{pid}"}).model_dump_json(), 3)
            assert done["ok"], done
            assert runner.twin.service().active_dc == "dc-standby"
            # the node comes back (here: by hand), then someone replays the recorded, still-executed decision
            runner.twin.apply(failover.model_copy(update={"action": "failback"}))
            assert runner.twin.service().active_dc == "dc-primary"
            replayed = send(cmd_topic(Sector.BANKING), failover.model_copy(
                update={"decision_ref": f"proposal:{pid}"}).model_dump_json(), 4)
            assert not replayed["ok"] and "already carried out" in str(replayed["error"])
            assert runner.twin.service().active_dc == "dc-primary"  # a decision moves an actuator once

            fault = send(sim_topic(Sector.BANKING), json.dumps(
                {"op": "inject-fault", "kind": "outage", "target": "atm-cluster-2"}), 5)
            assert fault["ok"] and runner.twin.faults == {"atm-cluster-2": "outage"}
            bad = send(sim_topic(Sector.BANKING), json.dumps({"op": "inject-fault", "kind": "meteor",
                                                              "target": "atm-cluster-2"}), 6)
            assert not bad["ok"] and "unknown fault kind 'meteor'" in str(bad["error"])
            garbage = send(cmd_topic(Sector.BANKING), "{not json", 7)
            assert not garbage["ok"] and "not an actuator command" in str(garbage["error"])
        finally:
            controller.disconnect()
            controller.loop_stop()
