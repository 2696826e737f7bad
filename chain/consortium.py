"""The development consortium `qeaims deploy` creates: six sectors, their operators, four oracles
each, one governor per sector, and a starter set of infrastructure nodes with dependencies.

Real deployments register their own members through `qeaims gov propose`; this is the city the
demo and the tests run on. Node ids are short ASCII names (they are `bytes32` on-chain).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONTROL_OPERATOR", "CONTROL_SECTOR", "NODES", "OPERATORS", "ORACLES_PER_SECTOR", "SECTORS", "DevNode"]

SECTORS = ("electricity", "water", "sewage", "healthcare", "transportation", "banking")

OPERATORS = {
    "electricity": "city-power",
    "water": "city-water",
    "sewage": "city-sewer",
    "healthcare": "health-network",
    "transportation": "transit-authority",
    "banking": "payment-switch",
}

ORACLES_PER_SECTOR = 4

# The self-healing controller signs its own steps (plan, isolation applied, repair, reintegration):
# it is the only member of a sector of its own, so it can record events but never vote on a
# utility's isolation, and it holds REPAIR_ROLE on the quorum to move an isolated node to repair.
CONTROL_SECTOR = "control"
CONTROL_OPERATOR = "city-control"


@dataclass(frozen=True)
class DevNode:
    node: str
    sector: str
    kind: str
    criticality: int
    depends_on: tuple[str, ...] = ()


NODES: tuple[DevNode, ...] = (
    DevNode("feeder-1", "electricity", "feeder", 4),
    DevNode("feeder-2", "electricity", "feeder", 5),
    DevNode("feeder-3", "electricity", "feeder", 4),
    DevNode("feeder-4", "electricity", "feeder", 3),
    DevNode("pump-1", "water", "pump-station", 4, ("feeder-1",)),
    DevNode("pump-2", "water", "pump-station", 3, ("feeder-3",)),
    DevNode("treatment-1", "water", "treatment-plant", 5, ("feeder-2",)),
    DevNode("main-1", "water", "trunk-main", 4),
    DevNode("lift-1", "sewage", "lift-station", 3, ("feeder-1",)),
    DevNode("lift-2", "sewage", "lift-station", 3, ("feeder-4",)),
    DevNode("wwtp-1", "sewage", "treatment-plant", 4, ("feeder-2",)),
    DevNode("outfall-1", "sewage", "outfall", 2),
    DevNode("hospital-1", "healthcare", "hospital", 5, ("feeder-2", "pump-1")),
    DevNode("hospital-2", "healthcare", "hospital", 5, ("feeder-3", "pump-2")),
    DevNode("clinic-1", "healthcare", "clinic", 3, ("feeder-4",)),
    DevNode("ambulance-hub", "healthcare", "dispatch", 5, ("feeder-1",)),
    DevNode("signals-centre", "transportation", "signal-group", 4, ("feeder-1",)),
    DevNode("signals-east", "transportation", "signal-group", 3, ("feeder-3",)),
    DevNode("metro-line-1", "transportation", "rail-line", 4, ("feeder-2",)),
    DevNode("bridge-1", "transportation", "road-link", 3),
    DevNode("dc-primary", "banking", "data-centre", 5, ("feeder-2",)),
    DevNode("dc-standby", "banking", "data-centre", 4, ("feeder-4",)),
    DevNode("switch-1", "banking", "payment-switch", 5, ("dc-primary",)),
    DevNode("atm-cluster-1", "banking", "atm-cluster", 2, ("feeder-1",)),
)
