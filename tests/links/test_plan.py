"""links.plan: who is linked to whom, and what each direction of a link may carry."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from links.plan import (
    CONTROLLER_SAE,
    DASHBOARD_SAE,
    OPERATIONS_SAE,
    LinkPlan,
    LinkSpec,
    city_plan,
    oracle_sae,
    twin_sae,
)


def test_the_city_plan_links_each_gateway_to_each_oracle_the_controller_and_operations() -> None:
    plan = city_plan(["water", "banking"], oracles_per_sector=4)
    assert len(plan.links) == 2 * (4 + 3)
    water = {link.slave: link for link in plan.for_sae(twin_sae("water"))}
    assert set(water) == {*(oracle_sae("water", i) for i in range(1, 5)), CONTROLLER_SAE, OPERATIONS_SAE, DASHBOARD_SAE}
    assert all(link.master == twin_sae("water") for link in water.values())
    # an oracle reads its sector's readings and sends nothing; the controller alone commands
    oracle = water[oracle_sae("water", 2)]
    assert oracle.master_to_slave == ("qeaims/water/+/+",) and oracle.slave_to_master == ()
    assert "qeaims-cmd/water" in water[CONTROLLER_SAE].slave_to_master
    assert "qeaims-cmd/water" not in water[OPERATIONS_SAE].slave_to_master
    assert water[DASHBOARD_SAE].master_to_slave == ("qeaims-svc/water",)  # the public page: service levels only
    assert water[DASHBOARD_SAE].slave_to_master == ()
    assert plan.between(CONTROLLER_SAE, twin_sae("banking")) is not None
    assert plan.between(oracle_sae("water", 1), oracle_sae("water", 2)) is None  # oracles are not linked
    assert plan.saes() == sorted(plan.saes()) and CONTROLLER_SAE in plan.saes()


def test_a_link_joins_two_named_saes_once(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="two different SAEs"):
        LinkSpec(master="a", slave="a", distance_km=1)
    with pytest.raises(ValueError, match="SAE id"):
        LinkSpec(master="A/b", slave="c", distance_km=1)
    with pytest.raises(ValueError, match="distance_km"):
        LinkSpec(master="a", slave="b", distance_km=-1)
    with pytest.raises(ValueError, match="two links join"):
        LinkPlan(links=(LinkSpec(master="a", slave="b", distance_km=1), LinkSpec(master="b", slave="a", distance_km=2)))
    plan = city_plan(["water"], oracles_per_sector=1)
    path = tmp_path / "plan.json"
    plan.save(path)
    assert LinkPlan.load(path) == plan
    path.write_text('{"links": [{"master": "a", "slave": "a", "distance_km": 1}]}')
    with pytest.raises(ConfigError, match="link plan .*links.0"):
        LinkPlan.load(path)
    with pytest.raises(ConfigError, match="no link plan"):
        LinkPlan.load(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="not an end"):
        plan.links[0].peer_of("somebody")
