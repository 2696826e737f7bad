"""Dependency graph: built on the on-chain nodes, ranks what a failure reaches with the right times
to impact, and plays each sector's response over simulated time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chain.consortium import NODES, DevNode
from sectors._twin import TwinError, UnknownAsset
from sectors.banking import DEV_BANKING
from sectors.graph import Cascade, NodeState, at_risk, build_graph, dependency
from sectors.healthcare import DEV_HOSPITALS

H = 3600.0
HOSPITAL_1 = next(h for h in DEV_HOSPITALS if h.hospital_id == "hospital-1")


def test_every_on_chain_node_and_dependency_is_an_anchor() -> None:
    graph = build_graph()
    for node in NODES:
        assert graph.nodes[node.node]["anchor"] is True
        assert graph.nodes[node.node]["criticality"] == node.criticality
        for supplier in node.depends_on:
            assert graph.has_edge(supplier, node.node)
    assert graph.nodes["atm-cluster-2"]["anchor"] is False
    assert dependency(graph, "feeder-2", "hospital-1").buffer_s == HOSPITAL_1.backup_hours * H
    assert dependency(graph, "feeder-2", "dc-primary").buffer_s == DEV_BANKING.primary.ups_minutes * 60
    assert dependency(graph, "pump-1", "hospital-1").kind == "water"
    assert dependency(graph, "bridge-1", "hospital-1").kind == "road"


def test_feeder_failure_ranks_the_hospital_and_its_pump_with_times_to_impact() -> None:
    ranked = at_risk("feeder-1")
    first = ranked[0]
    assert (first.node, first.sector, first.criticality) == ("hospital-1", "healthcare", 5)
    assert first.time_to_impact_s == HOSPITAL_1.water_storage_hours * H
    assert first.path == ("feeder-1", "pump-1", "hospital-1")
    pump = next(r for r in ranked if r.node == "pump-1")
    assert (pump.criticality, pump.time_to_impact_s, pump.path) == (4, 0.0, ("feeder-1", "pump-1"))
    keys = [(-r.criticality, r.time_to_impact_s) for r in ranked]
    assert keys == sorted(keys)
    assert {r.node for r in ranked} == {"hospital-1", "ambulance-hub", "pump-1", "signals-centre", "lift-1",
                                        "atm-cluster-1"}


def test_quickest_path_wins_and_degraded_assets_pass_nothing_on() -> None:
    by_node = {r.node: r for r in at_risk("feeder-2")}
    # feeder-2 powers hospital-1 directly (24 h of fuel) but also the treatment plant whose
    # 12 h clearwell then pump-1 then 8 h of on-site water reach it first.
    assert by_node["hospital-1"].time_to_impact_s == 20 * H
    assert by_node["switch-1"].time_to_impact_s == DEV_BANKING.primary.ups_minutes * 60
    assert at_risk("bridge-1") == [at_risk("bridge-1")[0]]  # a degraded hospital cascades no further
    assert at_risk("outfall-1") == []


def test_cascade_plays_each_sector_response_over_time() -> None:
    nodes = (
        DevNode("feeder-9", "electricity", "feeder", 4),
        DevNode("pump-9", "water", "pump-station", 4, ("feeder-9",)),
        DevNode("hospital-1", "healthcare", "hospital", 5, ("feeder-9",)),
    )
    cascade = Cascade(build_graph(nodes, extras=False))
    changed = {e.node: e.state for e in cascade.fail("feeder-9")}
    assert changed == {"feeder-9": NodeState.FAILED, "pump-9": NodeState.FAILED, "hospital-1": NodeState.ON_BACKUP}
    assert cascade.advance(HOSPITAL_1.backup_hours * H - 60) == []
    events = cascade.advance(120)
    assert [(e.node, e.state) for e in events] == [("hospital-1", NodeState.DEGRADED)]
    assert events[0].at == cascade.start + timedelta(hours=HOSPITAL_1.backup_hours)
    assert "backup generator" in events[0].cause
    cascade.restore("feeder-9")
    assert set(cascade.states().values()) == {NodeState.OK}


def test_default_city_cascade_from_a_feeder() -> None:
    cascade = Cascade()
    cascade.fail("feeder-2")
    assert cascade.state("dc-primary") is NodeState.ON_BACKUP
    assert cascade.state("treatment-1") is NodeState.FAILED
    cascade.advance(DEV_BANKING.primary.ups_minutes * 60)
    assert cascade.state("switch-1") is NodeState.FAILED
    assert cascade.state("atm-cluster-2") is NodeState.FAILED
    cascade.advance(20 * H)
    assert cascade.state("hospital-1") is NodeState.DEGRADED
    assert cascade.state("pump-1") is NodeState.FAILED


def test_bad_input_raises_clear_errors() -> None:
    with pytest.raises(UnknownAsset, match="no node 'feeder-99'"):
        at_risk("feeder-99")
    cascade = Cascade()
    with pytest.raises(UnknownAsset):
        cascade.fail("nowhere")
    cascade.fail("feeder-1")
    with pytest.raises(TwinError, match="already failed"):
        cascade.fail("feeder-1")
    with pytest.raises(TwinError, match="not failed directly"):
        cascade.restore("pump-1")
    cascade.advance(60)
    with pytest.raises(TwinError, match="cannot step back"):
        cascade.step(cascade.now - timedelta(seconds=1))
    with pytest.raises(TwinError, match="not a node"):
        build_graph((DevNode("x", "water", "pump-station", 1, ("ghost",)),))
    with pytest.raises(UnknownAsset, match="does not depend"):
        dependency(build_graph(), "feeder-1", "hospital-2")
