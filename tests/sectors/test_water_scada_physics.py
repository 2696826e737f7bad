"""The water SCADA physics layer on a tiny simulated network: normal rows pass, each concealment fails.

The network (`tests.sectors.scada_network`) is simulated by EPANET for five weeks of hourly rows;
the checks are fitted on the first four and judged on the fifth, falsified as BATADAL's attackers
did: a pump's status reported off while it runs, an offset on a tank level, and a day of tank and
pump readings replayed while the pressures stay true.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sectors.water import scada_physics as sp
from tests.sectors.scada_network import COLUMNS, hour_of_week, simulate, tiny_network

TRAIN = 24 * 28


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> tuple[sp.PhysicsModel, pd.DataFrame]:
    wn = tiny_network()
    rows = simulate(wn, 24 * 35, tmp_path_factory.mktemp("tiny"))
    x, how = rows[COLUMNS].to_numpy(float), hour_of_week(rows)
    model = sp.fit(wn, sp.scada_map(COLUMNS, wn), COLUMNS, x[:TRAIN], how[:TRAIN])
    return model, rows


def _ratios(model: sp.PhysicsModel, rows: pd.DataFrame) -> np.ndarray:
    return model.residuals(rows[COLUMNS].to_numpy(float), hour_of_week(rows))[TRAIN:]


def test_network_structure_from_the_inp() -> None:
    wn = tiny_network()
    smap = sp.scada_map([*COLUMNS, "P_nowhere", "DATETIME"], wn)
    assert dict(smap.level) == {"T1": "L_T1"} and dict(smap.status) == {"PU1": "S_PU1"}
    assert set(smap.pressure) == {"JS", "JD", "J2"}  # P_nowhere names no junction of the network
    zone = next(z for z in sp.zones(wn, smap) if z.tanks)
    assert zone.tanks == ("T1",) and zone.inflow == ("PU1",) and zone.outflow == ()
    assert {"J1", "J2", "JD"} <= zone.junctions and "JS" not in zone.junctions


def test_normal_rows_pass_and_thresholds_come_from_training(plant: tuple[sp.PhysicsModel, pd.DataFrame]) -> None:
    model, rows = plant
    assert model.controls == {"PU1": ("T1", 2.0, 4.5)}  # the network's own start and stop levels
    assert not (_ratios(model, rows) > 1).any()
    assert all(np.isfinite(c.threshold) and c.threshold > 0 for c in model.checks)
    train = model.residuals(rows[COLUMNS].to_numpy(float)[:TRAIN], hour_of_week(rows)[:TRAIN])
    assert not (train > 1).any()  # no training row over its own threshold


def test_stream_equals_batch(plant: tuple[sp.PhysicsModel, pd.DataFrame]) -> None:
    model, rows = plant
    x, how = rows[COLUMNS].to_numpy(float), hour_of_week(rows)
    batch = model.residuals(x, how)
    scorer = model.stream()
    streamed = np.array([scorer.push(row, int(h)) for row, h in zip(x, how, strict=True)])
    assert len(scorer.rows) == model.context + 1  # bounded history
    np.testing.assert_allclose(streamed[model.context:], batch[model.context:], rtol=1e-9, atol=1e-9)


def test_pump_reported_off_while_running(plant: tuple[sp.PhysicsModel, pd.DataFrame]) -> None:
    model, rows = plant
    bad = rows.copy()
    running = bad.index[(bad.S_PU1 == 1) & (bad.index >= TRAIN + 10)][0]
    bad.loc[running, "S_PU1"] = 0.0
    ratios = _ratios(model, bad)
    fired = np.flatnonzero((ratios > 1).any(axis=1))
    assert list(fired) == [running - TRAIN]
    assert model.checks[int(np.argmax(ratios[running - TRAIN] > 1))].name == "status:PU1"
    assert "S_PU1" in model.blame(ratios[running - TRAIN])


def test_tank_level_offset(plant: tuple[sp.PhysicsModel, pd.DataFrame]) -> None:
    model, rows = plant
    bad = rows.copy()
    start = TRAIN + 30
    bad.loc[start:, "L_T1"] += 1.0
    ratios = _ratios(model, bad)
    fired = np.flatnonzero((ratios > 1).any(axis=1))
    assert len(fired) and fired[0] + TRAIN - start <= 6
    assert "L_T1" in model.blame(ratios[fired[0]])


def test_replayed_day_of_tank_and_pump_readings(plant: tuple[sp.PhysicsModel, pd.DataFrame]) -> None:
    model, rows = plant
    bad = rows.copy()
    start, replayed = TRAIN + 48, ["L_T1", "F_PU1", "S_PU1"]
    bad.loc[start:start + 23, replayed] = rows.loc[start - 24:start - 1, replayed].to_numpy()
    assert not np.allclose(bad.loc[start:start + 23, replayed], rows.loc[start:start + 23, replayed])
    ratios = _ratios(model, bad)
    window = ratios[start - TRAIN:start - TRAIN + 24]
    assert (window > 1).any(axis=1).sum() >= 3
    checks = {model.checks[i].name.split(":")[0] for i in np.flatnonzero((window > 1).any(axis=0))}
    assert checks & {"balance", "hydraulic"}
    before = ratios[:start - TRAIN]
    assert not (before > 1).any()


def test_load_network_reads_an_inp(tmp_path: Path) -> None:
    import wntr

    path = tmp_path / "tiny.inp"
    wntr.network.io.write_inpfile(tiny_network(), str(path), units="LPS")
    wn = sp.load_network(path)
    assert set(sp.scada_map(COLUMNS, wn).flow) == {"PU1"} and sp.scada_map(COLUMNS, wn).flow_m3_s == 0.001


def test_simulated_pressure_check(plant: tuple[sp.PhysicsModel, pd.DataFrame]) -> None:
    """The per-row EPANET solve reproduces the normal pressures, and a pressure offset breaks it."""
    model, rows = plant
    thresholds = {c.name: c.threshold for c in model.checks}
    assert thresholds["simulated:P_J2"] < 1.0 and thresholds["simulated:F_PU1"] < 2.0  # m, L/s
    bad = rows.copy()
    bad.loc[TRAIN + 40, "P_J2"] += 3.0
    ratios = _ratios(model, bad)[40]
    fired = {model.checks[i].name for i in np.flatnonzero(ratios > 1)}
    assert "simulated:P_J2" in fired and model.blame(ratios)[0] == "P_J2"


@pytest.fixture(scope="module")
def net3(tmp_path_factory: pytest.TempPathFactory) -> tuple[sp.PhysicsModel, list[str], np.ndarray, np.ndarray]:
    """The twin's network and sensor ids (Net3: a meter on every pipe, SI units), two weeks of
    15-minute rows, fitted on the first week without the linearised relations (a week spans too
    little of Net3's pressures for them). `how` is the hour of the day (Net3's patterns are daily)."""
    import wntr

    from sectors.water.network import net3_path

    wn = sp.load_network(net3_path())
    step = 900
    wn.options.time.duration = 14 * 86400 - step
    wn.options.time.hydraulic_timestep = wn.options.time.report_timestep = step
    res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path_factory.mktemp("net3") / "net3"))
    smap = sp.twin_map(wn, row_seconds=step)
    pressure, flow, status = res.node["pressure"], res.link["flowrate"], res.link["status"]
    frame = pd.DataFrame({**{c: pressure[t] for t, c in smap.level.items()},
                          **{c: flow[k] for k, c in smap.flow.items()},
                          **{c: (status[k] > 0).astype(float) for k, c in smap.status.items()},
                          **{c: pressure[j] for j, c in smap.pressure.items()}})
    columns, x = list(frame.columns), frame.to_numpy(float)
    how = (np.arange(len(x)) * step // 3600 % 24).astype(np.int64)
    half = len(x) // 2
    model = sp.fit(wn, smap, columns, x[:half], how[:half], sp.Thresholds(linear=False))
    return model, columns, x, how


def test_twin_sensor_ids_on_net3(net3: tuple[sp.PhysicsModel, list[str], np.ndarray, np.ndarray]) -> None:
    """The next week passes; a 0.3 m offset on tank 1 fails at once and names the level."""
    model, columns, x, how = net3
    assert model.smap.level["1"] == "tank:1/level_m" and model.smap.status["335"] == "pump:335/status"
    assert model.period == 24
    tank, start, stop = model.controls["335"]  # Net3: pump 335 runs by tank 1's level
    assert tank == "1" and round(start, 3) == 5.212 and round(stop, 3) == 5.822
    half = len(x) // 2
    assert not (model.residuals(x[half:], how[half:]) > 1).any()
    bad = x.copy()
    bad[half + 100:, columns.index("tank:1/level_m")] += 0.3
    ratios = model.residuals(bad[half:], how[half:])
    fired = np.flatnonzero((ratios > 1).any(axis=1))
    assert fired[0] == 100 and "tank:1/level_m" in model.blame(ratios[100])


def test_violations_from_a_twin_window(net3: tuple[sp.PhysicsModel, list[str], np.ndarray, np.ndarray]) -> None:
    """The layer as a `sectors.invariants` rule: a window of the twin's readings and its clock →
    violations naming the instruments that contradict each other."""
    from sectors.invariants import CLOCK

    model, columns, x, how = net3
    status = columns.index("pump:335/status")
    end = len(x) // 2 + int(np.flatnonzero(x[len(x) // 2:, status] > 0.5)[3])
    rows = x[end - model.context:end + 1]
    window = {c: rows[:, i].copy() for i, c in enumerate(columns)} | {CLOCK: how[end - model.context:end + 1] * 3600.0}
    assert model.violations(window) == []
    window["pump:335/status"][-1] = 0.0  # reported off while it runs
    found = model.violations(window)
    assert any(v.sensor == "pump:335/status" and not v.fault for v in found)
    assert {"pump:335/status", "pump:335/flow_m3s"} <= {s for v in found for s in v.suspects}
    assert model.violations({c: v for c, v in window.items() if c != CLOCK}) == []  # no clock: no verdict


def test_a_pickled_model_scores_the_same(plant: tuple[sp.PhysicsModel, pd.DataFrame]) -> None:
    """An oracle caches its fitted model on disk: the EPANET project is reopened on loading."""
    import pickle

    model, rows = plant
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(_ratios(copy, rows), _ratios(model, rows))


def test_the_unfitted_checks_the_twin_runs() -> None:
    """What the water twin's rules take from this layer (`sectors.water.rules`): status ↔ flow both ways,
    the balance's trapezoid, and which zones need no demand fitted (C-Town-like zones with customers do;
    the twin's Net3, a meter on every pipe, has each tank a zone of its own)."""
    from sectors.water.network import net3_path

    np.testing.assert_array_equal(sp.status_flow(np.array([0.0, 5.0, 5.0, 0.0, -5.0]), np.array([1, 1, 0, 0, 0]), 0.1),
                                  [1.0, 0.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(sp.balance_residual(np.array([0.0, 10.0, 25.0]), np.array([1.0, 1.0, 2.0]), 10.0),
                               [0.0, 0.0])
    tiny = tiny_network()
    assert not sp.sealed(tiny, next(z for z in sp.zones(tiny, sp.scada_map(COLUMNS, tiny)) if z.tanks))
    net3 = sp.load_network(net3_path())
    tanks = [z for z in sp.zones(net3, sp.twin_map(net3)) if z.tanks]
    assert [z.tanks for z in tanks] == [("1",), ("2",), ("3",)] and all(sp.sealed(net3, z) for z in tanks)
    control = sp.level_controls(net3, sp.twin_map(net3))["335"]
    assert control.tank == "1" and not control.rising and control.start < control.stop
