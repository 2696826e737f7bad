"""The heating sector's one registered interface (`sectors.plugin.SectorPlugin`).

Everything the city needs to run district heating is here or named from here: the twin, the nodes
its operator registers, which node a pump or substation belongs to, how its detector trains, which
fault a stopped pump means, the controller's responses, crew times and its default scenario.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.messages import FaultKind
from sectors.plugin import DevNode, FaultCase, ScenarioFault, SectorPlugin, TrainingPlan
from sectors.service import ServiceLevel, share

__all__ = ["PLUGIN"]


def _open(seed: int, start: datetime | None) -> Any:
    from tests.plugins.heating.twin import HeatingTwin

    return HeatingTwin(seed=seed) if start is None else HeatingTwin(seed=seed, start=start)


def _service(twin: Any) -> ServiceLevel:
    delivered, demanded = twin.service()
    availability = share(delivered, demanded)
    return ServiceLevel(availability=availability, customers_affected=round((1 - availability) * 12_000),
                        critical_affected=0, detail={"delivered_kw": delivered, "demand_kw": demanded})


# Four nodes, as each built-in sector has: the quorum's isolation cap (25 % of a sector's nodes by
# default) lets one of them be isolated at a time; with two, none could be.
PLUGIN = SectorPlugin(
    name="heating",
    title="District heating",
    operator="city-heat",
    nodes=(
        DevNode("heat-plant-1", "heating", "heat-plant", 4, ("feeder-2",)),
        DevNode("heat-net-1", "heating", "heat-network", 3),
        DevNode("heat-net-2", "heating", "heat-network", 3),
        DevNode("heat-store-1", "heating", "thermal-store", 2, ("heat-plant-1",)),
    ),
    report_period_s=300,
    open_twin=_open,
    training=TrainingPlan(288, 1, "a day of 5-minute periods: both demand peaks"),
    responses="tests.plugins.heating.responses",
    twin_type="tests.plugins.heating.twin:HeatingTwin",
    service_level=_service,
    anchor_rules=((r"plant:H1|pump:P[12]", "heat-plant-1"), (r"sub:S[12]", "heat-net-1"), (r"sub:S3", "heat-net-2")),
    fault_patterns=((r"pump:P[12]", FaultKind.PUMP_FAILURE),),
    crew_travel_s=1800, crew_repair_s=4 * 3600,
    fault_cases=(FaultCase(FaultKind.PUMP_FAILURE, "pump:P1"),),
    scenario=(ScenarioFault(600, FaultKind.PUMP_FAILURE, "pump:P1"),),
)
