"""What the controller's parts share: the step kinds and time limits, the `Planner` it is given,
an `Isolation` it walks, and the attributes every part reads (part of `controller.node`).

Its own module so that the isolation steps (`controller._isolation_steps`), the intrusion response
(`controller._intrusion_response`) and the loop (`controller.node`) each import it, and none of
them imports another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chain.client import ChainClient
from chain.indexer import Indexer
from chain.recorder import EventRecorder
from controller._plan_workers import PlanWorkers
from controller.commander import Commander
from controller.crews import CrewPool
from controller.cyber import IndicatorTally, IntrusionTally, Quarantine
from controller.deadlines import FieldClock
from controller.plans import ResponsePlan
from core import logs
from core.kinds import kind_by_name
from core.messages import Sector
from keys.identity import HybridIdentity
from vaults.onchain import SealWatch

__all__ = ["COMMAND_TIMEOUT_S", "COUNTERMEASURE", "INDICATOR", "INTRUSION", "OPTIONAL_TIMEOUT_S", "SENSOR_QUARANTINE", "STEP_KINDS",
           "ControllerState", "Isolation", "Planner", "log_line"]


COMMAND_TIMEOUT_S = 30.0  # a busy device answers at its next step; silence this long is an outage
OPTIONAL_TIMEOUT_S = 5.0  # a protective command's device may not answer: its silence is recorded
# (a sector with no device online, `Commander.online`, is not waited for at all)
SENSOR_QUARANTINE = kind_by_name("sensor-quarantine")
INTRUSION = kind_by_name("intrusion")
INDICATOR = kind_by_name("indicator")
COUNTERMEASURE = kind_by_name("countermeasure")
STEP_KINDS: dict[str, int] = {
    "plan": kind_by_name("reroute-plan"),
    "applied": kind_by_name("isolation-applied"),
    "restore-plan": kind_by_name("reroute-plan"),  # steps share a kind; the payload's ``step`` tells them apart
    "restored": kind_by_name("isolation-applied"),
    "cascade": kind_by_name("cascade-analysis"),
    "dispatched": kind_by_name("repair-dispatched"),
    "repaired": kind_by_name("repaired"),
    "reintegrated": kind_by_name("reintegrated"),
}


def log_line(event: str, **fields: object) -> None:
    logs.log_line("qeaims.controller", event, **fields)


Planner = Callable[[Sector, str, str, Sequence[dict[str, Any]]], "ResponsePlan | None"]
"""(sector, purpose, asset, commands already sent for it) → the plan, or None when there is nothing
to do for this asset (`controller.planning.TwinPlanner` is the real one)."""


@dataclass
class Isolation:
    proposal: int
    node: str
    sector: Sector
    asset: str
    criticality: int
    steps: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # step → (seq, payload)

    @property
    def finished(self) -> bool:
        return "reintegrated" in self.steps


class ControllerState:
    """What every part of the controller reads (set up by `controller.node.Controller.__init__`)."""

    client: ChainClient
    identity: HybridIdentity
    me: str
    commander: Commander
    planner: Planner
    plans: PlanWorkers
    crews: CrewPool
    speed: float
    _clock: Callable[[], float]
    field_clock: FieldClock | None
    recorder: EventRecorder
    index: Indexer
    tally: IntrusionTally
    _chain_view: dict[str, tuple[float, Any]]
    quarantines: dict[str, Quarantine]
    _commanded_logged: set[str]  # quarantines not taken because the sensor reads a commanded state (logged once)
    _seal_watches: dict[str, SealWatch]  # each sector's vault seal as the chain says it
    _vault_seals_due: bool  # a quarantine was taken or lifted since the seals were last compared
    indicator_tally: IndicatorTally
    published_indicators: dict[str, datetime]  # "sector|id" → when this controller's latest publication expires
    device_quarantines: dict[str, str]  # "sector|device" → the id of its quarantine in force (this controller's)
    _device_quarantines_in_outbox: Callable[[], dict[str, str]]
    isolations: dict[int, Isolation]
