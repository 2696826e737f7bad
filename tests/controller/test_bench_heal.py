"""`qeaims bench heal` end to end, short: two line faults on the live feeder, one after the other, each
isolated by the oracles' quorum and worked around by the controller, with every figure and every
isolation read back from the chain. The second fault needs the whole cycle of the first (repair,
verification on fresh readings, reintegration quorum, fail-back) to have run.

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
from core.config import Settings
from core.kinds import kind_by_name
from keys.ids import from_bytes32, to_bytes32
from qeaims.bench_heal import HealBenchResult, HealOptions, result_dict, run_heal_bench


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
        seen["applied"] = [p for o, k, p in events if o == me and k == STEP_KINDS["applied"] and p["step"] == "applied"]
        seen["restored"] = [p for o, k, p in events if o == me and k == STEP_KINDS["restored"] and p["step"] == "restored"]
        seen["reintegrated"] = [p for o, k, p in events if o == me and k == STEP_KINDS["reintegrated"]]
        seen["faults"] = [p for _, k, p in events if k == kind_by_name("fault")]
        seen["status"] = QuorumClient(client).node_status(to_bytes32("feeder-1"))

    # a third of the default speed: the oracles keep up on a loaded CI machine (this checks behaviour, not speed)
    result = run_heal_bench(HealOptions(runs=2, speed=100, train_rows=160, run_timeout_s=120), inspect=inspect)
    data = result_dict(result)
    for key in ("isolation_p50_s", "isolation_p95_s", "restore_p95_s", "detection_p95_s"):
        assert data[key] > 0, (key, data)
    # the detector needs a faulty report before anything can happen: no figure beats one report period
    assert result.isolation_p50_s >= result.detection_p50_s >= result.report_period_s / 2
    assert result.restore_p95_s > result.isolation_p95_s
    assert result.aborted == "", result.aborted
    assert (result.injected, result.isolated, result.restored, result.missed) == (2, 2, 2, 0)
    assert [(r.asset, r.node, r.located, r.acks_ok) for r in result.runs] == [
        ("line-7", "feeder-1", "line-7", True), ("line-20", "feeder-1", "line-20", True)]
    # the isolations the bench timed are on the chain: executed by a quorum, for the faulted asset's node
    proposals = [r.proposal for r in result.runs]
    assert [(p, "feeder-1") for p in proposals] == seen["isolations"]
    assert result.wrongful_isolations == 0
    assert any(p["subject"] == "feeder-1" for p in seen["faults"])  # type: ignore[union-attr]
    assert [p["proposal"] for p in seen["applied"]] == proposals  # type: ignore[union-attr]
    assert [p["proposal"] for p in seen["restored"]] == proposals  # type: ignore[union-attr]
    # the first fault's node came back through the reintegration quorum before the second was injected
    assert proposals[0] in [p["proposal"] for p in seen["reintegrated"]]  # type: ignore[union-attr]
    assert seen["status"] in ("isolated", "repairing", "active")
    assert json.loads(json.dumps(data))["settings"]["train_rows"] == 160
