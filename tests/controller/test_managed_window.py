"""The controller's plans played into an offline water twin against the automation-off baseline
(`sectors.baseline`, with the crew's manual response): same twin, same report period, same weights."""

from __future__ import annotations

from controller.managed_window import PlanLog, managed_events, play
from core.messages import Sector
from sectors.baseline import run_baseline
from sectors.remote import SimControl

W = Sector.WATER
ONSET, DETECT = 60.0, 60.0
WINDOW = ONSET + DETECT + 2700 + 600  # past the crew's arrival: both end with the main shut


def test_on_a_trunk_main_the_controller_serves_more_than_the_crew_and_loses_far_less_water() -> None:
    """Pipe 123 (a plug-in fault case) is a trunk main: shutting it cuts nobody off but starves
    4,731 customers of pressure, as its leak does. The crew shuts it after its 45-minute drive and
    nobody raises the pressure; the controller shuts it a minute after the onset with the valves
    on the right halves of the split pipe and starts the idle pump, both at full speed, so every
    customer keeps the required pressure. Before, the restore plan sent nothing (it read the
    model's unsolved state) and the isolation left the break fed through the far half."""
    controls = [(ONSET, SimControl(op="inject-fault", kind="pipe-break", target="pipe:123"))]
    baseline = run_baseline([(at, W, c) for at, c in controls], sectors=[W], duration_s=WINDOW)[W]
    log = PlanLog()
    managed = play(W, managed_events(W, controls, detect_s=DETECT, log=log), WINDOW)
    assert [e["purpose"] for e in log.entries] == ["isolate", "restore"]
    assert managed.availability > baseline.availability + 0.01
    assert managed.integrals["leak_m3s"] < 0.1 * baseline.integrals["leak_m3s"]
    assert managed.integrals["customers_low_pressure"] < 0.1 * baseline.integrals["customers_low_pressure"]


def test_where_the_isolation_cuts_fewer_than_the_flowing_break_starves_the_controller_wins_visibly() -> None:
    """Pipe 321, a trunk main whose segment holds 93 customers: flowing, its break (1.3 m³/s) leaves
    3,623 customers short of pressure until the crew shuts it; the controller shuts it a minute after
    the onset. The storm day's pipe 159 is the opposite case — its isolation cuts more than its
    break starves, so no response wins there by shutting sooner (`tests/controller/test_water_refeed.py`)."""
    controls = [(ONSET, SimControl(op="inject-fault", kind="pipe-break", target="pipe:321"))]
    baseline = run_baseline([(at, W, c) for at, c in controls], sectors=[W], duration_s=WINDOW)[W]
    managed = play(W, managed_events(W, controls, detect_s=DETECT, log=PlanLog()), WINDOW)
    assert managed.availability > baseline.availability + 0.01
    assert managed.integrals["customers_low_pressure"] < 0.1 * baseline.integrals["customers_low_pressure"]
    assert managed.integrals["leak_m3s"] < 0.1 * baseline.integrals["leak_m3s"]
