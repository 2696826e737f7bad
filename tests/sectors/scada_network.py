"""A tiny EPANET network and its simulated SCADA rows, for the physics-layer tests (no shared data).

Reservoir R1 → JS → pump PU1 → JD → J1 → tank T1, with J2 drawing a weekly demand off J1. PU1
starts below 2 m in T1 and stops above 4.5 m (the network's own controls), as C-Town's pumps do.
Rows are hourly, BATADAL-style: ``L_T1, F_PU1, S_PU1, P_JS, P_JD, P_J2`` (m, L/s, 0/1, m).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import wntr
from numpy.typing import NDArray

COLUMNS = ["L_T1", "F_PU1", "S_PU1", "P_JS", "P_JD", "P_J2"]
START = pd.Timestamp("2024-01-01 00:00")  # a Monday: the demand pattern's hour 0


def tiny_network() -> wntr.network.WaterNetworkModel:
    wn = wntr.network.WaterNetworkModel()
    wn.options.hydraulic.inpfile_units = "LPS"
    rng = np.random.default_rng(7)
    wn.add_pattern("week", list(0.6 + 0.8 * rng.random(168)))
    wn.add_reservoir("R1", base_head=20.0)
    wn.add_junction("JS", elevation=0.0)
    wn.add_junction("JD", elevation=0.0)
    wn.add_junction("J1", elevation=5.0)
    wn.add_junction("J2", base_demand=0.02, demand_pattern="week", elevation=5.0)
    wn.add_tank("T1", elevation=40.0, init_level=3.0, min_level=0.0, max_level=6.0, diameter=20.0)
    wn.add_pipe("P0", "R1", "JS", length=50, diameter=0.3, roughness=120)
    wn.add_curve("C1", "HEAD", [(0.0, 45.0), (0.02, 40.0), (0.04, 30.0)])
    wn.add_pump("PU1", "JS", "JD", pump_type="HEAD", pump_parameter="C1")
    wn.add_pipe("P1", "JD", "J1", length=300, diameter=0.2, roughness=120)
    wn.add_pipe("P2", "J1", "T1", length=200, diameter=0.2, roughness=120)
    wn.add_pipe("P3", "J1", "J2", length=400, diameter=0.15, roughness=120)
    pump, tank = wn.get_link("PU1"), wn.get_node("T1")
    on = wntr.network.controls.ControlAction(pump, "status", 1)
    off = wntr.network.controls.ControlAction(pump, "status", 0)
    wn.add_control("start", wntr.network.controls.Control(
        wntr.network.controls.ValueCondition(tank, "level", "<", 2.0), on))
    wn.add_control("stop", wntr.network.controls.Control(
        wntr.network.controls.ValueCondition(tank, "level", ">", 4.5), off))
    return wn


def simulate(wn: wntr.network.WaterNetworkModel, hours: int, folder: Path) -> pd.DataFrame:
    """Hourly SCADA rows of `hours` of operation (EPANET, 5-minute hydraulic steps)."""
    wn.options.time.duration = hours * 3600 - 3600
    wn.options.time.hydraulic_timestep = 300
    wn.options.time.report_timestep = 3600
    wn.options.time.pattern_timestep = 3600
    res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(folder / "tiny"))
    pressure, flow, status = res.node["pressure"], res.link["flowrate"], res.link["status"]
    rows = pd.DataFrame({
        "L_T1": pressure["T1"].to_numpy(),
        "F_PU1": 1000 * flow["PU1"].to_numpy(),
        "S_PU1": (status["PU1"].to_numpy() > 0).astype(float),
        "P_JS": pressure["JS"].to_numpy(), "P_JD": pressure["JD"].to_numpy(), "P_J2": pressure["J2"].to_numpy(),
    })
    rows.loc[rows.S_PU1 == 0, "F_PU1"] = 0.0
    times = START + pd.to_timedelta(np.arange(len(rows)), unit="h")
    rows.insert(0, "DATETIME", times.strftime("%d/%m/%y %H"))
    return rows.round(2)


def hour_of_week(frame: pd.DataFrame) -> NDArray[np.int64]:
    t = pd.to_datetime(frame.DATETIME, format="%d/%m/%y %H")
    return np.asarray((t.dt.weekday * 24 + t.dt.hour).to_numpy(), dtype=np.int64)
