"""The normal-operation figures behind the water rules' thresholds (`sectors.water.rules`).

Usage: PYTHONPATH=. python3 scripts/water_rule_margins.py [HOURS]   (default 30: 3,600 rows, ~10 min)

Runs the water twin with nothing broken from its midnight at the oracles' 30-second rows and prints,
per threshold, the largest value normal operation reached: a rule must stay quiet on all of it.
"""

from __future__ import annotations

import sys

import numpy as np


def main(hours: float = 30.0) -> int:
    from sectors.water import WaterTwin, scada_physics
    from sectors.water.rules import (
        DRAW_MARGIN,
        DROP_ROWS,
        FLOW_EPS_M3S,
        _beside_tanks,
        _contacts,
        _least_draw,
        _level_error,
        _network,
        _plant,
        _pumps,
        _segments,
        _tanks,
    )

    net, segments = _network(), _segments()
    twin = WaterTwin()
    names = [s.sensor_id for s in twin.sensors]
    col = {n: i for i, n in enumerate(names)}
    rows = []
    for _ in range(int(hours * 3600 / 30)):
        values = {r.sensor_id: r.value for r in twin.step(30)}
        rows.append([values[n] for n in names])
    x = np.asarray(rows)
    nj = len(net.junctions)
    balance = x[:, [col[m] for m in net.meters]] @ net.incidence.T
    heads = x[:, [col[h] for h in net.heads]]
    status = x[:, [col[s] for s in net.statuses]]
    fall = np.zeros_like(heads)
    switched = np.zeros(len(x), dtype=bool)
    for t in range(DROP_ROWS, len(x)):
        fall[t] = heads[t - DROP_ROWS:t].max(axis=0) - heads[t]
        recent = status[t - DROP_ROWS:t + 1]
        switched[t] = bool(np.any(recent.max(axis=0) != recent.min(axis=0)))
    quiet = fall[~switched]
    second = max(float(np.sort(quiet[:, [j, *(w for w in net.adjacent[j] if w < nj)]], axis=1)[:, -2].max())
                 for j in range(nj) if any(w < nj for w in net.adjacent[j]))
    print(f"rows: {len(x)} ({hours:g} h at 30 s)")
    print(f"LEAK_M3S: largest balance over a junction's peak demand {float((balance - net.peak_m3s).max()):.3g} m3/s; "
          f"lowest balance {float(balance.min()):.3g} m3/s")
    print(f"DROP_M: largest gauge fall in {DROP_ROWS} rows {float(fall[:, :nj].max()):.2f} m (pumps switching), "
          f"{float(quiet[:, :nj].max()):.2f} m with the pumps steady; second-largest in a neighbourhood {second:.2f} m")
    print(f"TANK_FALL_M: largest tank fall in {DROP_ROWS} rows {float(fall[:, nj:].max()):.4f} m")
    print(f"DRY_M: lowest gauge {float(heads[:, :nj].min()):.2f} m; lowest gauge of a judged segment "
          f"{min(float(x[:, [col[g] for g in s.gauges]].min()) for s in segments):.2f} m")
    least = {s.segment: float(np.abs(x[:, [col[m] for m in s.meters]]).max(axis=1).min()) for s in segments}
    closest = min(least, key=least.__getitem__)
    print(f"DRAW_MARGIN: least flow a judged segment's meters all carried at once {least[closest]:.5f} m3/s "
          f"(segment {closest}: {least[closest] / FLOW_EPS_M3S:.2f} x FLOW_EPS_M3S)")
    layer, draw = _plant().segments, _least_draw()
    index = {j: i for i, j in enumerate(net.junctions)}
    judged = {s.segment for s in segments}
    metered = set(twin.wn.pipe_name_list) | set(twin.wn.pump_name_list)
    for segment in sorted({layer.segment_of_link(k) for k in twin.wn.link_name_list} - judged):
        plan = layer.plan(segment)
        if plan.sources or not plan.junctions or not plan.valves:
            continue
        meters = len({*plan.links_to_close, *plan.links} & metered)
        customers = sum(twin.customers.get(j, 0) for j in plan.junctions)
        print(f"  not judged: segment {segment} (junctions {', '.join(plan.junctions)}; {customers} customers), "
              f"least draw {sum(draw[index[j]] for j in plan.junctions) * 1000:.2f} L/s through {meters} meters "
              f"(needs {DRAW_MARGIN * meters * FLOW_EPS_M3S * 1000:.2f})")
    for pump in _pumps():
        rule = pump.rule
        level = x[:, col[rule.level]]
        off = (x[:, col[f"{rule.pump}/status"]] <= 0.5) & (np.abs(x[:, col[f"{rule.pump}/flow_m3s"]]) <= rule.flow_eps)
        residual = pump.tank.residuals({n: x[:, col[n]] for n in pump.tank.sensors()})
        if residual is not None:
            print(f"TANK_BALANCE_M: {pump.tank.level} off its meters by at most {float(np.abs(residual).max()):.2g} m "
                  "in a row")
        lowest_off = f"{float(level[off].min()):.4f} m" if off.any() else "never off"
        highest_on = f"{float(level[~off].max()):.4f} m" if (~off).any() else "never on"
        print(f"PUMP_MARGIN_M: {rule.pump} reported off down to {lowest_off} (start level {rule.start_m:.4f} m), "
              f"running up to {highest_on} (stop level {rule.stop_m:.4f} m)")
    window = 32  # the oracles' history (`oracles.stream`): `TankLevel` also sums its residual over it
    for level_rule in _tanks():
        tank = level_rule.tank
        residual = tank.residuals({n: x[:, col[n]] for n in tank.sensors()})
        if residual is not None:
            sums = np.convolve(residual, np.ones(window - 1), mode="valid")
            print(f"TANK_BALANCE_M ({tank.level}): off its meters by at most {float(np.abs(residual).max()):.2g} m "
                  f"in a row, {float(np.abs(sums).max()):.2g} m over {window} rows")
    # the SCADA physics layer's own checks on the same rows, as the rules run them (issue 17: the code that
    # scores BATADAL scores the twin): status ↔ flow both ways, and each tank's zone sealed (no demand to fit)
    smap = scada_physics.twin_map(twin.wn, row_seconds=30)
    for link, run in sorted(smap.status.items()):
        on = x[:, col[run]] > 0.5
        bad = scada_physics.status_flow(x[:, col[smap.flow[link]]], x[:, col[run]], FLOW_EPS_M3S) > 0
        print(f"scada_physics.status_flow (pump {link}, eps FLOW_EPS_M3S): {int((bad & on).sum())} rows on with no flow, "
              f"{int((bad & ~on).sum())} rows off with flow, of {int(on.sum())} on and {int((~on).sum())} off")
    for zone in scada_physics.zones(twin.wn, smap):
        if zone.tanks:
            print(f"scada_physics zone {zone.name}: tanks {', '.join(zone.tanks)}, {len(zone.junctions)} nodes, "
                  f"sealed (no unmetered demand) {scada_physics.sealed(twin.wn, zone)}")
    # the per-row EPANET solve, off on the twin (`sectors.water.rules`' docstring): its residuals on normal rows,
    # without and with the commanded pipe states read from the meters (`Snapshot`'s `shut_eps`)
    clock = np.arange(1, len(x) + 1) * 30.0 // 3600 % 24  # hour of the day at each row (the twin starts at midnight)
    for shut in (None, FLOW_EPS_M3S):
        snap = scada_physics.Snapshot(_plant().wn, smap, names, shut_eps=shut)
        res = np.abs(snap.residuals(x, clock.astype(np.int64)))
        flows = [i for i, n in enumerate(snap.names) if n.endswith("/flow_m3s")]
        gauges = [i for i, n in enumerate(snap.names) if n.endswith("/pressure_m")]
        worst_q, worst_p = (int(np.nanargmax(np.nanmax(res[:, idx], axis=0))) for idx in (flows, gauges))
        cut = sorted({snap.names[gauges[i]] for i in np.flatnonzero(np.isnan(res[:, gauges]).any(axis=0))})
        print(f"GAUGE_SOLVE_M, Snapshot (shut_eps {shut}): flows off the solve by at most {float(np.nanmax(res[:, flows])):.3g} m3/s "
              f"({snap.names[flows[worst_q]]}), pressures by {float(np.nanmax(res[:, gauges])):.3g} m "
              f"({snap.names[gauges[worst_p]]}); not judged (cut off) in some row: {', '.join(cut) or 'none'}")
        if shut is not None:  # the level's witness (`LEVEL_SOLVE_M`): the gauge beside each tank
            for gauge in sorted(_beside_tanks()):
                i = snap.names.index(gauge)
                print(f"LEVEL_SOLVE_M ({gauge}, beside a tank): off the solve by at most {float(np.nanmax(res[:, i])):.2g} m")
    # the gauges' estimate of each tank level's error (`_level_error`), on every row whose solve is vouched for
    from sectors.invariants import CLOCK

    errors: dict[str, list[float]] = {t.tank.level: [] for t in _tanks()}
    unjudged = 0
    for t in range(1, len(x)):
        pair = {n: x[t - 1:t + 1, col[n]] for n in names}
        pair[CLOCK] = np.array([t * 30.0, (t + 1) * 30.0]) % 86400.0
        for tank_level, seen in errors.items():
            got = _level_error(pair, tank_level)
            unjudged += got is None
            if got is not None:
                seen.append(abs(got[0]))
    for tank_level, seen in errors.items():
        print(f"LEVEL_SOLVE_M ({tank_level}): the gauges around it put it off by at most {max(seen):.2g} m "
              f"({len(seen)} rows judged)")
    print(f"LEVEL_SOLVE_M: {unjudged} tank-rows not judged (an input of the solve not vouched for, or fewer than "
          "LEVEL_WITNESSES gauges follow the level: its outlet reads no flow)")
    for contact in _contacts():
        off = x[:, col[f"{contact.pump}/status"]] <= 0.5
        flow = x[:, col[net.meters[contact.meter]]]
        most = f"{float(np.abs(flow[off]).max()):.2g} m3/s" if off.any() else "never off"
        print(f"PumpContact ({contact.pump}): most flow metered while the contact read off: {most} "
              f"(FLOW_EPS_M3S {FLOW_EPS_M3S:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0))
