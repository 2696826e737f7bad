"""A controller step whose send fails is done once (crash campaign: `repaired` ×2 after a chain kill).

The chain kill of campaign run 2 dropped the batch carrying `repaired`: the row was on disk, the
in-memory step was not, and the same controller, retrying after the chain error, cleared the fault
again and recorded a second row. The step must count as done once it is durable in the outbox.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bus.mqtt import EmbeddedBroker
from chain.deploy import dev_controller
from chain.recorder import FlushReport
from controller.commander import Commander
from controller.node import STEP_KINDS, Controller
from controller.planning import TwinPlanner
from core.errors import ChainError, TransactionFailed
from core.messages import Sector
from sectors.remote import SimControl
from tests.conftest import free_port
from tests.controller.test_controller import steps_on_chain
from tests.support import isolate_by_quorum, running_twin


def test_a_step_written_ahead_is_not_redone_when_its_send_fails(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    port = free_port()
    with EmbeddedBroker(port=port), running_twin(chain, Sector.BANKING, port) as live, \
            Commander(port=port) as commander:
        assert commander.control(Sector.BANKING, SimControl(op="inject-fault", kind="outage",
                                                            target="dc-primary")).ok
        pid = isolate_by_quorum(chain, "banking", "dc-primary", "dc-primary")
        ctl = Controller(settings=chain.settings, client=chain.client, deployment=chain.deployment,
                         identity=dev_controller(chain.settings), commander=commander, planner=TwinPlanner(),
                         speed=3600.0)
        real_flush = ctl.recorder.flush
        failed: list[bool] = []

        def flaky_flush(*args: Any, **kwargs: Any) -> FlushReport:
            # the chain kill of run 2: the batch carrying `repaired` is dropped by the restarted node
            if not failed and any(json.loads(r.payload).get("step") == "repaired" for r in ctl.outbox.pending(50)):
                failed.append(True)
                raise TransactionFailed("EventLedger.recordBatch was dropped by the node (test)")
            return real_flush(*args, **kwargs)

        ctl.recorder.flush = flaky_flush  # type: ignore[method-assign]
        deadline = time.monotonic() + 90
        try:
            while not (pid in ctl.isolations and "repaired" in ctl.isolations[pid].steps):
                assert time.monotonic() < deadline, "timed out waiting for the repair"
                try:
                    ctl.run_once()
                except ChainError:
                    pass  # what controller.process's loop does: back off and go again
                time.sleep(0.2)
            for _ in range(3):
                ctl.run_once()
            rows = [json.loads(r.payload) for r in ctl.outbox.rows_of_kinds([STEP_KINDS["repaired"]])]
            assert failed, "the flush carrying `repaired` never failed: the test did not test"
            assert [r["proposal"] for r in rows if r["step"] == "repaired"].count(pid) == 1, rows
            assert live.twin.faults == {}
            assert ctl.outbox.pending_count() == 0
        finally:
            ctl.close()
    assert steps_on_chain(chain).count(("repaired", pid)) == 1
