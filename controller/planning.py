"""The controller plans on a network model of its own, not on the field devices.

Like an ADMS, the controller keeps a model of each sector's network (the same twin code, opened in
the controller's process) and works out plans there: the live twin is a device it may only command.
For each plan it opens a fresh model, breaks it the way the verdict says the asset broke
(each sector plug-in's ``fault_patterns``: a line section faults, a pipe breaks, a data centre goes down), replays the
commands already sent for this isolation, and asks the sector's responder (`controller.responses`,
FLISR for electricity). A fresh model per plan keeps planning deterministic and independent of
other isolations; what it leaves out (two faults interacting, loads at the model's clock rather than
the field's) is the price of not reading the field's state back, and is the next step to take.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import networkx as nx

from controller._controller_state import log_line
from controller.plans import ResponsePlan
from controller.responses import plan_for
from controller.scada import FieldView
from core.messages import ActuatorCommand, FaultKind, Sector
from sectors.plugin import FieldFault, plugin_of
from sectors.runner import open_twin

__all__ = ["TwinPlanner", "guess_fault"]

def guess_fault(sector: Sector, asset: str) -> FaultKind | None:
    """The physical fault a fault verdict on `asset` most likely means, or None if no rule applies."""
    for pattern, kind in plugin_of(sector).fault_patterns:
        if re.fullmatch(pattern, asset):
            return kind
    return None


def _open_and_close(sector: Sector) -> None:
    with open_twin(sector):
        pass


class TwinPlanner:
    """`Planner` for `controller.node.Controller`: (sector, purpose, asset, commands sent) → plan.

    With a `FieldView`, a verdict about a whole feeder is narrowed to the faulted section the field
    shows (FLISR's locate: the tripped switch bordering a dark zone); the plan's ``target`` is then
    that line, which the controller adopts as the isolation's asset. The field also tells fault kinds
    apart that an asset's name cannot (a hospital's power loss or a declared surge, the sector's
    ``field_fault``): the model is broken the way the field shows.
    """

    def __init__(self, field: FieldView | None = None) -> None:
        self.field = field

    def warm(self, sectors: Iterable[Sector]) -> dict[str, float]:
        """Open each sector's model once, so the city's first plan does not pay for the first open.

        Cold, the electricity model takes about two seconds to open (imports, the first power flow)
        and FLISR's switch graph as long again; warm, a plan takes 0.06 s. At 30x two seconds are a
        minute of the city's time, all of it added to the first fault's response. Returns the
        seconds each took; a model (or the feeder graph) that cannot open here is logged and left to
        fail at its first plan, where the failure is recorded on-chain like any other.
        """
        took: dict[str, float] = {}
        if self.field is not None:
            self._warm_one("feeder-graph", lambda: self._feeder_graph, took)  # FLISR's switch graph, kept once built
        for sector in sectors:
            self._warm_one(sector.value, functools.partial(_open_and_close, sector), took)
        return took

    @staticmethod
    def _warm_one(name: str, open_it: Callable[[], object], took: dict[str, float]) -> None:
        """Time `open_it` into `took[name]`; a failure is logged and left to the first plan that needs it."""
        start = time.perf_counter()
        try:
            open_it()
        except Exception as exc:  # noqa: BLE001 - warming is an optimisation: a model that cannot open here
            # fails its first plan instead, recorded on-chain, and the controller must start regardless
            log_line("controller-model-cold", model=name, error=f"{type(exc).__name__}: {exc}"[:300])
            return
        took[name] = time.perf_counter() - start

    @functools.cached_property
    def _feeder_graph(self) -> nx.MultiGraph:
        """The feeder's topology, built once (an electricity twin takes seconds to open)."""
        from sectors.electricity.twin import ElectricityTwin

        graph: nx.MultiGraph = ElectricityTwin().switch_graph()
        return graph

    def _field_time(self, sector: Sector) -> datetime | None:
        """The newest field reading's time in `sector` (the field's clock), or None without a view."""
        readings = [] if self.field is None else self.field.readings(sector)
        return max((r.timestamp for r in readings), default=None)

    def _field_severity(self, sector: Sector, kind: FaultKind, model: Any) -> float | None:
        """How hard the field shows `kind`, for the model to be broken alike; None: the twin's default.

        A feeder overload's surge is the substation's metered draw over the model's at the same hour
        (the model opened at the field's time): the shed is sized for the feeder as it is.
        """
        if sector is not Sector.ELECTRICITY or kind is not FaultKind.FEEDER_OVERLOAD or self.field is None:
            return None
        from sectors.electricity.rules import HEAD

        field = {r.sensor_id: r.value for r in self.field.readings(sector)}.get(HEAD)
        own = {r.sensor_id: r.value for r in model.readings()}.get(HEAD)
        if field is None or not own:
            return None
        return min(max(float(field) / float(own), 1.0 + 1e-6), 5.0)

    def _field_fault(self, sector: Sector, asset: str) -> FieldFault | None:
        """The fault the field shows at `asset`, where its name cannot tell (`SectorPlugin.field_fault`)."""
        read = plugin_of(sector).field_fault
        return None if self.field is None or read is None else read(self.field.readings(sector), asset)

    def __call__(self, sector: Sector, purpose: str, asset: str,
                 sent: Sequence[dict[str, Any]] = ()) -> ResponsePlan | None:
        shown = self._field_fault(sector, asset)
        if shown is not None:
            asset = shown.asset  # where the field shows it (the feeder as a whole, a hospital's ventilators)
        elif sector is Sector.ELECTRICITY and self.field is not None and purpose != "reintegrate":
            # SCADA is the authority on where a line fault is: a verdict may name a feeder, or a
            # neighbouring line whose readings moved most; the tripped switch does not lie
            from controller.electricity import NoElectricityPlan, locate_fault

            try:
                asset = locate_fault(self.field.readings(sector), self._feeder_graph)
            except NoElectricityPlan:
                if guess_fault(sector, asset) is None:
                    raise
        kind = shown.kind if shown is not None else guess_fault(sector, asset)
        if kind is None:
            return None  # nothing in the model to act on (the node itself, or an asset without a rule)
        # a fault the field showed is planned on a model at the field's hour (a surge is demand,
        # and demand follows the clock), scaled to what the field draws (`_field_severity`)
        with open_twin(sector, start=self._field_time(sector) if shown else None) as model:
            severity = (shown.severity if shown.severity is not None else self._field_severity(sector, kind, model.twin)) \
                if shown else None
            model.twin.inject_fault(kind, asset, **({"severity": severity} if severity is not None else {}))
            for spec in sent:
                command = ActuatorCommand(sector=sector, asset_id=str(spec["asset"]), actuator_id=str(spec["actuator"]),
                                          action=str(spec["action"]), value=spec.get("value"))
                model.twin.apply(command)
            if purpose == "reintegrate":
                model.twin.clear_fault(asset)
            return plan_for(sector, purpose, model.twin, asset)
