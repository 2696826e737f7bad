"""The sewage sector as a plug-in (`sectors.plugin.SectorPlugin`): a combined sewer under SWMM (pyswmm).

Declared in ``pyproject.toml`` under the ``qeaims.sectors`` entry points. The twin and its field
library are imported only when a twin is opened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.messages import AttackKind, FaultKind
from sectors.drawing import NetworkDrawing
from sectors.plugin import DevNode, FaultCase, ScenarioFault, SectorPlugin, TrainingPlan
from sectors.service import ServiceLevel

__all__ = ["PLUGIN"]

F = FaultKind


def _invariants(window: Any) -> Any:
    from sectors.sewage.rules import invariants

    return invariants(window)


def _open(seed: int, start: datetime | None) -> Any:
    from sectors.sewage.twin import SewageTwin

    return SewageTwin() if start is None else SewageTwin(start=start)


def _service(twin: Any) -> ServiceLevel:
    """1 minus the share of the sewage arriving now that is spilled (CSO overflow or flooding).

    The sewer's service is taking the city's sewage away without spilling it. Sewage arriving now
    = what reaches the wet well (C4) + what is diverted to the storm tank (OR1) + what spills at
    the CSO weir + what floods out of the upstream manholes; spilled = CSO overflow + flooding
    at every node (manholes, wet well, storm tank). availability = 1 − spilled / arriving, so it is
    1 with no spill and 0 when everything arriving goes to the river or the street. A wet well
    that is still filling behind failed pumps is not (yet) a loss: its buffer is real service.
    customers_affected / critical_affected = 0: the SWMM model has no customer counts; the
    flooded nodes and rates are in ``detail``.
    """
    from sectors.sewage.network import CONDUITS, DIVERSION, JUNCTIONS, STORM_TANK, WET_WELL

    report = twin.service()
    nodes, links = twin._nodes, twin._links  # the live SWMM engine the twin owns; read only
    manholes = sum(max(0.0, float(nodes[n].flooding)) for n in JUNCTIONS)
    storage = sum(max(0.0, float(nodes[n].flooding)) for n in (WET_WELL, STORM_TANK))
    into_well = max(0.0, float(links[CONDUITS[3]].flow))  # C4, the trunk into the wet well
    diverted = max(0.0, float(links[DIVERSION].flow))
    spilled = report.overflow_m3s + manholes + storage
    arriving = into_well + diverted + report.overflow_m3s + manholes
    availability = 1.0 - (min(1.0, spilled / max(arriving, spilled)) if spilled > 0.0 else 0.0)
    return ServiceLevel(
        availability=availability,
        customers_affected=0,
        critical_affected=0,
        detail={
            "overflow_m3s": float(report.overflow_m3s),
            "flooding_m3s": manholes + storage,
            "arriving_m3s": arriving,
            "flooded_nodes": float(len(report.flooded_nodes)),
            "overflow_m3": float(report.overflow_m3),
            "flooding_m3": float(report.flooding_m3),
            "wet_well_level_m": float(report.wet_well_level_m),
        },
    )


def _weather(seed: int, rows: int, stride: int, period_s: int) -> Any:
    """Rain over the sewage training run: dry spells and episodes up to storm intensity.

    Weather is what the sewer is built to take, so it belongs in normal operation
    (`sectors.sewage.weather`). The series is drawn from the training seed, so a model is
    reproducible; it changes the gauge only when the intensity changes, as a real one would.
    """
    import numpy as np

    from sectors.sewage.weather import rain_series

    series = rain_series(np.random.default_rng([seed, 0x5EA]), rows * stride * period_s, step_s=stride * period_s)

    def drive(runner: Any, i: int) -> None:
        if i < len(series) and (i == 0 or series[i] != series[i - 1]):
            runner.twin.set_rain(series[i])

    return drive


# MSET with a memory large enough for every weather the sewer sees. A storm moves the sewer into
# other states, not just further along the dry-weather ones: both pumps run, the CSO weir spills,
# the wet well stands high. PCA fits one linear subspace to dry and wet operation together, and the
# subspace wide enough for both no longer sees a pump that stopped. MSET estimates each row from the
# normal states most like it, so a stopped duty pump in a storm is judged against storms in which it
# ran, and is named itself. At a row a minute the first minutes of a cloudburst are states of their
# own (the gauge reads 40 mm/h while the runoff is still on its way; the well rises 0.3 m a minute
# while the PLC has yet to scan): trained on one 12-day run with 600 states, a 40 mm/h storm raised
# a FAULT on the duty pump as it started; on three runs (36 days of weather) with 1,000
# states, neither storm nor drizzle raises anything and the failed duty pump is still named in a row.
def _network() -> NetworkDrawing:
    from sectors.sewage.drawing import network

    return network()


PLUGIN = SectorPlugin(
    name="sewage",
    title="Sewage",
    operator="city-sewer",
    network=_network,
    nodes=(
        DevNode("lift-1", "sewage", "lift-station", 3, ("feeder-1",), district="North-West"),
        DevNode("lift-2", "sewage", "lift-station", 3, ("feeder-4",), district="South-West"),
        DevNode("wwtp-1", "sewage", "treatment-plant", 4, ("feeder-2",), district="South-East"),
        DevNode("outfall-1", "sewage", "outfall", 2, district="North-East"),
    ),
    # SCADA polls every 30 s, as the PLC scans (issue 16: ≤ 60 s); the pump rules (`sectors.sewage.rules`,
    # whose ROW_S this is) name a failed pump within two rows
    report_period_s=30,
    open_twin=_open,
    training=TrainingPlan(34560, 1, "3 runs of 12 days, a row every 30 s (~0.5 ms each): dry-weather cycles and rain "
                          "episodes from drizzle to a 45 mm/h cloudburst (rain is weather, not a fault); "
                          "the CSO's totalised spill enters as its increments",
                          inputs=_weather, counters=("volume_m3",), detector="mset",
                          detector_options={"memory": 1000}, runs=3),
    responses="controller._responses_sewage",
    twin_type="sectors.sewage.twin:SewageTwin",
    service_level=_service,
    # the combined sewer drains through lift station PS1 (wet well WW, pumps P1/P2); the storm tank
    # and its orifice sit at the treatment works; the CSO weir discharges at the outfall
    anchor_rules=(
        (r"(pump:P[12]|storage:WW|station:PS1|conduit:.+|junction:.+)", "lift-1"),
        (r"(storage:ST1|orifice:OR1)", "wwtp-1"),
        (r"outfall:CSO", "outfall-1"),
    ),
    fault_patterns=((r"(pump:.+|station:.+)", F.PUMP_FAILURE), (r"conduit:.+", F.BLOCKAGE),
                    (r"outfall:CSO", F.OVERFLOW)),
    crew_travel_s=2700, crew_repair_s=4 * 3600,
    fault_cases=(
        # (rows are 30 s) dry weather: P1 starts at a wet-well level of 1.8 m, about 5 h in; a pump that
        # fails while idle changes nothing until then, and the wet well then rises ~0.003 m a minute
        FaultCase(F.PUMP_FAILURE, "pump:P1", warm_rows=560, max_rows=360),
        FaultCase(F.PUMP_FAILURE, "station:PS1", warm_rows=560, max_rows=360),
        # a sewer blocked (closed: a fat berg, a root mass) two hours into a dry day, once the sewers the
        # twin starts empty carry their sanitary flow, as a sewer in the field always does; C1 lies above
        # the diversion, C3 is the trunk below it (`sectors.sewage.rules`: a reach gone dry, its node's
        # meters losing the same flow)
        FaultCase(F.BLOCKAGE, "conduit:C1", 1.0, warm_rows=240),
        FaultCase(F.BLOCKAGE, "conduit:C3", 1.0, warm_rows=240),
        # a dry-weather overflow: the interceptor C4 below the CSO weir blocked on a dry day, so the CSO
        # chamber fills and the weir spills sanitary sewage with no rain; the right verdict names C4
        FaultCase(F.OVERFLOW, "conduit:C4", 1.0, asset="conduit:C4", warm_rows=240),
        # the trunk blocked 40 minutes into the storm day's rain: its flow, 1.2 m³/s, gone from C4 below it
        FaultCase(F.BLOCKAGE, "conduit:C3", 1.0, rain_mm_h=25.0, warm_rows=80, max_rows=40),
        # a storm is weather: inflow, wet well and CSO spill rise, and nothing may be voted out
        FaultCase(None, rain_mm_h=25.0, max_rows=360),
        FaultCase(None, rain_mm_h=40.0, max_rows=360),
        # the duty pump fails 40 minutes into a storm (the storm-day scenario); both pumps were running
        FaultCase(F.PUMP_FAILURE, "pump:P1", rain_mm_h=25.0, warm_rows=80, max_rows=240),
        # the wet-well level falsified 1 m high in dry weather: it calls for an idle, healthy pump
        # watched while the step is in the oracle's 32-row window: once it has left, the level is
        # self-consistent again, and only the quarantine its intrusion verdicts won keeps the idle pump
        # from being voted out (no chain here to quarantine it: tests/oracles/test_voting_physics.py)
        FaultCase(AttackKind.BIAS, "storage:WW/level_m", 1.0, warm_rows=400, max_rows=30),
        # the CSO chamber's level falsified 1 m high on a dry day: it drives a flow through C4 that C4 does
        # not carry, and would look like C4 blocked; with C3, C4 and the weir agreeing, the level lies
        FaultCase(AttackKind.BIAS, "junction:J4/level_m", 1.0, warm_rows=240, max_rows=30),
    ),
    scenario=(ScenarioFault(900, F.PUMP_FAILURE, "pump:P1"),),
    scenario_settle_s=3600,
    invariants=_invariants,
)
