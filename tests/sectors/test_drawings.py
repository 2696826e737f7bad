"""Every sector draws its network from its own model (`SectorPlugin.network`, `sectors.drawing`)."""

from __future__ import annotations

import math

import pytest

from core.sectors import BUILTIN, DISTRICTS, DevNode
from sectors.anchors import anchor_node
from sectors.drawing import NetworkDrawing, RawEdge, RawNode, district_of, draw
from sectors.plugin import plugin_of


def _drawing(sector: str) -> NetworkDrawing:
    network = plugin_of(sector).network
    assert network is not None, f"{sector} has no drawing"
    return network()


@pytest.mark.parametrize("sector", BUILTIN)
def test_every_sector_draws_its_nodes_edges_and_districts(sector: str) -> None:
    drawing = _drawing(sector)
    plugin = plugin_of(sector)
    ids = [n.id for n in drawing.nodes]
    assert len(ids) == len(set(ids)), "two drawn nodes share an id"
    markers = {n.id: n for n in drawing.nodes if n.marker}
    assert set(markers) == {n.node for n in plugin.nodes}, "every on-chain node is drawn, and only those as markers"
    for node in drawing.nodes:
        assert math.isfinite(node.x) and math.isfinite(node.y), node
        assert 0.0 <= node.x <= 1000.0 and 0.0 <= node.y <= 1000.0, node
        assert node.district in DISTRICTS, node
    known = set(ids)
    for edge in drawing.edges:
        assert edge.source in known and edge.target in known, edge
    for dev in plugin.nodes:  # the plug-in's hand-written district is the drawing's rule
        assert dev.district == markers[dev.node].district, dev.node
        assert markers[dev.node].anchor == dev.node


@pytest.mark.parametrize("sector", BUILTIN)
def test_anchors_are_the_quorums_rules(sector: str) -> None:
    drawing = _drawing(sector)
    for node in drawing.nodes:
        if not node.marker:
            assert node.anchor == anchor_node(plugin_of(sector).sector, node.id), node.id
    for edge in drawing.edges:
        if edge.anchor is not None:
            assert edge.anchor == anchor_node(plugin_of(sector).sector, edge.id), edge.id


def test_models_give_their_elements() -> None:
    """The models' geometry is drawn, not a placeholder: the feeder's 33 buses, Net3's pumps, the grid."""
    electricity = {n.id for n in _drawing("electricity").nodes}
    assert {f"bus-{k}" for k in range(1, 34)} <= electricity
    water = _drawing("water")
    assert {"pump:10", "pump:335"} <= {e.id for e in water.edges}
    assert {e.anchor for e in water.edges if e.id in ("pump:10", "pump:335")} == {"pump-1", "pump-2"}
    sewage = {n.id for n in _drawing("sewage").nodes}
    assert {"storage:WW", "outfall:CSO", "junction:J1"} <= sewage
    roads = _drawing("transportation")
    assert sum(1 for n in roads.nodes if n.id.startswith("node:")) == 16
    assert all(e.anchor == "signals-centre" for e in roads.edges if e.id.startswith("link:"))
    health = {n.id: n for n in _drawing("healthcare").nodes}
    assert health["hospital-1:ventilators"].anchor == "hospital-1" and "clinic-1:ventilators" not in health


def test_drawing_is_cached_per_process() -> None:
    assert _drawing("water") is _drawing("water")


def test_quadrant_rule_ties_go_north_and_east() -> None:
    assert district_of(500, 500, 500, 500) == "North-East"
    assert district_of(499, 501, 500, 500) == "South-West"
    assert district_of(10, 10, 500, 500) == "North-West"
    assert district_of(900, 900, 500, 500) == "South-East"


def test_a_node_the_model_lacks_needs_a_place() -> None:
    with pytest.raises(ValueError, match="no place"):
        draw("water", (DevNode("pump-1", "water", "pump-station", 4),), [RawNode("reservoir:R", "reservoir", 0, 0)], [],
             anchor_node=anchor_node)
    drawn = draw("water", (DevNode("pump-1", "water", "pump-station", 4),),
                 [RawNode("junction:a", "junction", 0, 0), RawNode("junction:b", "junction", 10, 0)],
                 [RawEdge("pump:10", "pump", "junction:a", "junction:b")], anchor_node=anchor_node)
    assert drawn.marker("pump-1").x == 500.0  # the pump's midpoint


def test_district_outside_the_set_is_refused() -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="district"):
        DevNode("x-1", "water", "pump-station", 1, district="Atlantis")
