"""`qeaims bench heal` end to end, short: a line fault on the live feeder, isolated by the oracles' quorum
and worked around by the controller, with every figure and every isolation read back from the chain.

Behaviour only: the figures must exist and be positive, never below what the report period allows;
how fast they are is what the benchmark prints, not what a test on a shared machine can promise.
"""

from __future__ import annotations

import json

from chain.connect import connect, contract_abis
from chain.deploy import dev_controller
from chain.indexer import Indexer
from chain.quorum import Action, QuorumClient
from controller.node import STEP_KINDS
from keys.ids import from_bytes32, to_bytes32
from qeaims.bench_heal import HealBenchResult, HealOptions, result_dict, run_heal_bench
from qeaims.config import Settings
from qeaims.kinds import kind_by_name


def test_a_short_heal_bench_times_isolations_that_are_on_chain() -> None:
    seen: dict[str, object] = {}

    def inspect(settings: Settings, result: HealBenchResult) -> None:
        client, deployment = connect(settings)
        index = Indexer(settings.home / "test-index.sqlite", client.rpc, deployment, contract_abis())
        try:
            index.sync()
            executed = [json.loads(a) for (a,) in index.db.execute(
                "SELECT args FROM logs WHERE contract = 'IsolationQuorum' AND event = 'ProposalExecuted'")]
            events = [(str(o), int(k), json.loads(bytes(p))) for o, k, p in index.db.execute(
                "SELECT oracle, kind, payload FROM events")]
        finally:
            index.close()
        seen["isolations"] = [(int(e["proposalId"]), from_bytes32(bytes.fromhex(str(e["target"])[2:])))
                              for e in executed if int(e["action"]) == Action.ISOLATE]
        seen["voters"] = {pid: QuorumClient(client).view(pid) for pid in result.isolated_on_chain}
        me = dev_controller(settings).address.lower()
        seen["applied"] = [p for o, k, p in events if o == me and k == STEP_KINDS["applied"]]
        seen["faults"] = [p for _, k, p in events if k == kind_by_name("fault")]
        seen["status"] = QuorumClient(client).node_status(to_bytes32("feeder-1"))

    result = run_heal_bench(HealOptions(runs=1, train_rows=160, run_timeout_s=120), inspect=inspect)
    data = result_dict(result)
    for key in ("isolation_p50_s", "isolation_p95_s", "restore_p95_s", "detection_p95_s"):
        assert data[key] > 0, (key, data)
    # the detector needs a faulty report before anything can happen: no figure beats one report period
    assert result.isolation_p50_s >= result.detection_p50_s >= result.report_period_s / 2
    assert result.restore_p95_s > result.isolation_p95_s
    assert (result.injected, result.isolated, result.restored, result.missed) == (1, 1, 1, 0)
    run = result.runs[0]
    assert run.asset == "line-7" and run.node == "feeder-1" and run.located == "line-7" and run.acks_ok
    # the isolation the bench timed is on the chain: executed by a quorum, for the faulted asset's node
    assert (run.proposal, "feeder-1") in seen["isolations"]  # type: ignore[operator]
    assert result.wrongful_isolations == len(seen["isolations"]) - 1 == 0  # type: ignore[arg-type]
    assert any(p["subject"] == "feeder-1" for p in seen["faults"])  # type: ignore[union-attr]
    assert [p["proposal"] for p in seen["applied"]] == [run.proposal]  # type: ignore[union-attr]
    # the controller took the node into repair (or already back): the cycle the next run needs
    assert seen["status"] in ("isolated", "repairing", "active")
    assert json.loads(json.dumps(data))["settings"]["train_rows"] == 160
