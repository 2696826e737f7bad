"""A seventh sector from a package outside the six runs ingest → detection → quorum isolation.

The heating plug-in (`tests.plugins.heating`) is declared only through ``QEAIMS_SECTOR_PLUGINS``, as
a utility would declare a package it installs: no file of the project names it. The test then
uses the project's own machinery, unchanged: the dev deploy registers the sector's operator, four
oracles and its nodes on a real Anvil; the oracles' training pipeline fits the sector's detector on
its twin's normal operation; four real `OracleNode`s take the twin's readings in, anchor them,
detect the pump failure, sign the fault and isolate the node it belongs to by the on-chain quorum;
the controller's dispatcher plans the response from the plug-in's own module; the command line
lists the sector and its scenario.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.consortium import nodes, operators, sectors
from chain.node import stop_anvil
from chain.quorum import QuorumClient
from controller.responses import plan_for
from core import sectors as registry
from core.messages import FaultKind, Sector, VerdictKind
from keys.ids import to_bytes32
from oracles.ingest.sink import ReadingSink
from oracles.node import NodeOptions, OracleNode
from oracles.training import train_sector
from sectors.anchors import anchor_node
from sectors.runner import open_twin
from tests.conftest import cli_env, make_chain, run_cli
from tests.oracles.test_oracle_node import ledger_events
from tests.support import oracle

PLUGIN_REF = "tests.plugins.heating.plugin:PLUGIN"


@pytest.fixture
def heating(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sector]:
    """The heating sector declared as an installed plug-in would be, and forgotten afterwards."""
    monkeypatch.setenv(registry.ENV_PLUGINS, PLUGIN_REF)
    registry.discover()
    yield Sector("heating")
    monkeypatch.delenv(registry.ENV_PLUGINS)
    registry.unregister("heating")


def test_a_sector_no_project_file_names_is_discovered_and_validated(heating: Sector) -> None:
    assert list(Sector)[-1] is heating and len(list(Sector)) == 7
    assert "heating" in sectors() and operators()["heating"] == "city-heat"
    assert {n.node for n in nodes() if n.sector == "heating"} == {"heat-plant-1", "heat-net-1", "heat-net-2",
                                                                          "heat-store-1"}
    assert anchor_node(heating, "pump:P1") == "heat-plant-1" and anchor_node(heating, "sub:S2") == "heat-net-1"
    with pytest.raises(ValueError, match="not a sector"):
        Sector("gas")


def test_the_seventh_sector_goes_from_ingest_through_detection_to_quorum_isolation(
        heating: Sector, tmp_path: Path) -> None:
    model = train_sector(heating, seed=0)  # the oracles' own pipeline: checks, PCA, calibration
    chain = make_chain(tmp_path / "home")
    try:
        with open_twin(heating, seed=7) as runner:
            data = [r for _ in range(12) for r in runner.advance()]
            runner.twin.inject_fault(FaultKind.PUMP_FAILURE, "pump:P1")
            data += [r for _ in range(8) for r in runner.advance()]
            plan = plan_for(heating, "isolate", runner, "pump:P1")
        assert [(c.actuator_id, c.action) for c in plan.commands] == [("pump:P1/run", "stop"), ("pump:P2/run", "start")]

        oracles = []
        for index in (1, 2, 3, 4):
            sink = ReadingSink()
            sink.put_many(data, source="test")
            node = OracleNode(settings=chain.settings, client=chain.client, deployment=chain.deployment,
                              identity=oracle(chain.settings, "heating", index), model=model, sink=sink,
                              options=NodeOptions(batch_size=64, max_age_s=0.0, peer_interval_s=0.0))
            oracles.append(node)
            node.run_once()
            node.run_once()  # a second pass finds nothing new to say
            assert node.drain_and_anchor()
        assert [node.actions()[0][3] for node in oracles] == ["voted", "voted", "voted", "moot"], \
            [node.actions() for node in oracles]
        assert QuorumClient(chain.client).node_status(to_bytes32("heat-plant-1")) == "isolated"
        assert QuorumClient(chain.client).node_status(to_bytes32("heat-net-1")) == "active"
        faults = ledger_events(chain, "fault")
        assert len({o for o, _, _ in faults}) >= 3
        assert all(p["subject"] == "heat-plant-1" for _, _, p in faults)
        assert {p["asset"] for _, _, p in faults} <= {"pump:P1", "plant:H1"}
        roots = ledger_events(chain, "telemetry-root")
        assert sum(int(p["count"]) for _, _, p in roots) == 4 * len(data)  # every reading anchored once per oracle
        for node in oracles:
            node.close()
    finally:
        stop_anvil(chain.settings)


def test_the_command_line_offers_the_seventh_sector_and_its_scenario(heating: Sector, tmp_path: Path) -> None:
    from core.config import load_settings

    env = cli_env(load_settings(home=tmp_path / "home")) | {registry.ENV_PLUGINS: PLUGIN_REF}
    listed = run_cli(["scenario", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert "heating-fault" in listed.stdout
    wrong = run_cli(["detect", "train", "--sector", "gas"], env)
    assert wrong.returncode != 0 and "heating" in wrong.stderr and "Traceback" not in wrong.stderr
    assert VerdictKind.FAULT.value == "fault"


def test_a_plug_in_cannot_take_over_a_registered_sector(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second package declaring ``water`` would redirect the water oracles' anchors and responses:
    it is refused with one line, and the built-in stays."""
    import dataclasses

    from core.errors import ConfigError
    from sectors.plugin import plugin_of

    original = plugin_of(Sector.WATER)
    impostor = dataclasses.replace(original, anchor_rules=((r".+", "pump-2"),))
    with pytest.raises(ConfigError, match="already registered"):
        registry.register(impostor)
    monkeypatch.setitem(globals(), "IMPOSTOR", impostor)
    monkeypatch.setenv(registry.ENV_PLUGINS, f"{__name__}:IMPOSTOR")
    with pytest.raises(ConfigError, match="already registered"):
        registry.discover()
    monkeypatch.delenv(registry.ENV_PLUGINS)
    assert plugin_of(Sector.WATER) is original
    with pytest.raises(ConfigError, match="built-in"):
        registry.unregister("water")


def test_a_deploy_that_adds_governors_raises_the_council_threshold_to_two_thirds(heating: Sector, tmp_path: Path) -> None:
    """Review F2: seven governors with the six-governor threshold of 4 would let a minority act."""
    from chain.deploy import council_threshold_for

    assert [council_threshold_for(n, 4) for n in (6, 7, 9)] == [4, 5, 6]
    chain = make_chain(tmp_path / "home")
    try:
        assert len(chain.client.call1("GovernanceCouncil", "governors")) == 7
        assert chain.client.call1("GovernanceCouncil", "threshold") == 5
    finally:
        stop_anvil(chain.settings)


def test_an_isolation_in_a_sector_this_controller_has_no_plug_in_for_stops_nothing_else(
        heating: Sector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review F1: a controller started without the heating plug-in used to die (ValueError) on the
    heating isolation, and again after every restart, leaving the water isolation unplanned."""
    from chain.deploy import dev_controller
    from controller.commander import Commander
    from controller.node import Controller
    from controller.planning import TwinPlanner
    from tests.support import isolate_by_quorum

    chain = make_chain(tmp_path / "home")
    try:
        water = isolate_by_quorum(chain, "water", "pump-1", "pump:10")
        heat = isolate_by_quorum(chain, "heating", "heat-plant-1", "pump:P1")
        monkeypatch.delenv(registry.ENV_PLUGINS)
        registry.unregister("heating")  # this controller's process was started without the plug-in
        ctl = Controller(settings=chain.settings, client=chain.client, deployment=chain.deployment,
                         identity=dev_controller(chain.settings), commander=Commander(port=1), planner=TwinPlanner())
        try:
            ctl.index.sync()
            open_isolations, _ = ctl._discover()
            assert [i.proposal for i in open_isolations] == [water]
            assert heat in ctl._unplanned
        finally:
            ctl.close()
    finally:
        stop_anvil(chain.settings)
        monkeypatch.setenv(registry.ENV_PLUGINS, PLUGIN_REF)
        registry.discover()  # the fixture's teardown forgets it again


def test_plug_ins_are_checked_before_any_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Review F4–F6: one broken reference registers none (and is reported again, not 'fixed' by a
    retry); a plug-in cannot list another sector's nodes (that would raise a built-in sector's
    isolation cap) nor take the controller's reserved sector name."""
    import dataclasses
    import types

    from core.errors import ConfigError, UnknownSector
    from sectors.plugin import by_sector
    from tests.plugins.heating.plugin import PLUGIN

    monkeypatch.setenv(registry.ENV_PLUGINS, f"{PLUGIN_REF},tests.plugins.heating.plugin:MISSING")
    for _ in range(2):
        with pytest.raises(ConfigError, match="cannot be loaded"):
            registry.discover()
    with pytest.raises(UnknownSector, match="cannot be loaded"):
        Sector("heating")
    assert "heating" not in registry._plugins  # nothing half-registered
    monkeypatch.delenv(registry.ENV_PLUGINS)
    with pytest.raises(KeyError):
        by_sector(lambda p: p.report_period_s)["gas"]  # type: ignore[index]
    intruder = types.SimpleNamespace(name="gas", operator="city-gas",
                                     nodes=(registry.DevNode("pump-9", "water", "pump-station", 3),))
    with pytest.raises(ConfigError, match="only its own nodes"):
        registry.register(intruder)
    with pytest.raises(ConfigError, match="controller"):
        registry.register(dataclasses.replace(PLUGIN, name="control", nodes=()))
    assert [s.value for s in Sector] == list(registry.BUILTIN)


def test_an_unknown_sector_at_a_boundary_is_a_validation_error_and_a_rejected_message() -> None:
    """Review F3: an unknown sector is a pydantic validation error and the wire parser rejects the
    message (it used to escape both as a ConfigError)."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from bus.errors import MessageRejected
    from bus.mqtt import parse_message
    from core.messages import Reading

    with pytest.raises(ValidationError, match="not a sector"):
        Reading(sector="gas", asset_id="a", sensor_id="s", quantity="q", unit="u", value=1.0,
                timestamp=datetime.now(UTC))
    body = b'{"quantity": "q", "unit": "u", "value": 1.0, "timestamp": "2026-12-04T08:00:00Z"}'
    with pytest.raises(MessageRejected):
        parse_message("qeaims/gas/a/s", body, now=datetime.now(UTC))


def test_a_broken_plug_in_reference_is_one_error_line_not_a_traceback(tmp_path: Path) -> None:
    from core.config import load_settings

    env = cli_env(load_settings(home=tmp_path / "home")) | {registry.ENV_PLUGINS: "no.such.module:PLUGIN"}
    result = run_cli(["scenario", "list"], env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: sector plug-in 'no.such.module:PLUGIN' cannot be loaded: No module named 'no'"]
