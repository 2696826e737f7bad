"""The road grid the transportation twin runs on, and its origin-destination demand over the day.

A 4×4 grid of intersections 500 m apart, every street two-way and single-lane at 50 km/h; the
four inner intersections are signalised (two phases: east-west, north-south). It is small on
purpose: uxsim simulates every vehicle platoon, and a twin that a test steps for an hour must
stay well under a second per simulated minute. Demand flows between the eight edge-midpoint
nodes and the corners, so trips cross the signalised core and have real alternative routes
(which is what makes closures and incidents re-route traffic instead of just stopping it).

Demand is deterministic: a fixed daily profile (morning and evening peaks) times per-OD
factors drawn once from ``numpy.random.default_rng(seed)``; uxsim's own randomness (route
choice among near-equal paths, merge order) is seeded with the same ``seed``. Two worlds built
with the same arguments evolve identically, which is what makes the twin's baseline world a
fair "no incident" comparison.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from uxsim import World

from sectors._twin import UnknownAsset

__all__ = [
    "ALL_WAY_STOP_VEH_S",
    "BLOCK_M",
    "CYCLE_S",
    "FREE_SPEED_MS",
    "GRID",
    "MONITORED_OD",
    "OD_PAIRS",
    "SIGNALS",
    "approaches",
    "build_world",
    "completed_trips",
    "demand_veh_h",
    "east_west",
    "exits",
    "free_flow_time",
    "link_name",
    "links",
    "node_name",
    "parse_asset_id",
]

GRID = 4
"""Intersections per side."""
BLOCK_M = 500.0
FREE_SPEED_MS = 50.0 / 3.6
CYCLE_S = 60.0
"""Signal cycle; the default split gives each phase half."""
DELTAN = 5
"""uxsim platoon size: each simulated vehicle object stands for this many cars."""
JAM_DENSITY = 0.2
"""veh/m per lane: about one car per 5 m of queue."""
ALL_WAY_STOP_VEH_S = 0.15
"""Throughput of a dark signal run as an all-way stop: about 540 veh/h for the whole junction (the
twin's physics of a signal outage, and the bound the outage rule holds the loops to,
`sectors.transportation.rules.DarkSignal`)."""


def node_name(row: int, col: int) -> str:
    """``n{row}{col}``: row 0 is the north edge, column 0 the west edge."""
    return f"n{row}{col}"


def link_name(a: str, b: str) -> str:
    """Directed link from node ``a`` to node ``b`` (``n00-n01``)."""
    return f"{a}-{b}"


SIGNALS: tuple[str, ...] = tuple(node_name(r, c) for r in range(1, GRID - 1) for c in range(1, GRID - 1))
"""Signalised intersections: the inner nodes, where the through traffic meets."""


def links() -> list[tuple[str, str, bool]]:
    """Every directed link as (start, end, east_west), in a fixed order (uxsim ids follow it)."""
    out: list[tuple[str, str, bool]] = []
    for r in range(GRID):
        for c in range(GRID):
            here = node_name(r, c)
            if c + 1 < GRID:
                out += [(here, node_name(r, c + 1), True), (node_name(r, c + 1), here, True)]
            if r + 1 < GRID:
                out += [(here, node_name(r + 1, c), False), (node_name(r + 1, c), here, False)]
    return out


OD_PAIRS: tuple[tuple[str, str, float], ...] = (
    ("n10", "n13", 360.0),
    ("n13", "n10", 300.0),
    ("n20", "n23", 300.0),
    ("n23", "n20", 360.0),
    ("n01", "n31", 300.0),
    ("n31", "n01", 240.0),
    ("n02", "n32", 240.0),
    ("n32", "n02", 300.0),
    ("n00", "n33", 180.0),
    ("n33", "n00", 180.0),
)
"""(origin, destination, peak veh/h): commuter flows across the signalised core."""
MONITORED_OD: tuple[tuple[str, str], ...] = (("n10", "n13"), ("n01", "n31"), ("n00", "n33"))
"""OD pairs with a travel-time sensor (think probe vehicles or Bluetooth re-identification)."""

_PROFILE = (
    0.1,
    0.06,
    0.05,
    0.05,
    0.08,
    0.2,
    0.5,
    0.9,
    1.0,
    0.75,
    0.55,
    0.55,
    0.6,
    0.55,
    0.55,
    0.6,
    0.8,
    0.95,
    0.9,
    0.6,
    0.4,
    0.3,
    0.2,
    0.15,
)
"""Share of peak demand by hour of day: a commuter city's two peaks."""


def demand_veh_h(peak_veh_h: float, hour: int, factor: float = 1.0) -> float:
    """Demand of one OD pair in one hour of the day."""
    return peak_veh_h * _PROFILE[hour % 24] * factor


def build_world(*, start: datetime, duration_s: int, seed: int, name: str) -> World:
    """A ready-to-step uxsim World for ``duration_s`` seconds from ``start`` (wall-clock time of
    simulated t = 0; the demand follows its hour of day). Silent: no printing, saving or plots.

    Vehicle trajectories are not logged, and a finished trip forgets its route preferences: the
    twin reads links, nodes and trip times, never trajectories, and the logs were what a day-long
    World held in memory (a live city's transportation twin grew past 5 GB at 30x). Measured on two
    simulated hours (seed 1): the same readings and service to the last digit, half the time, a
    seventh of the memory."""
    world = World(
        name=name,
        deltan=DELTAN,
        tmax=float(duration_s),
        duo_update_time=60,
        random_seed=seed,
        print_mode=0,
        save_mode=0,
        show_mode=0,
        show_progress=0,
        vehicle_logging_timestep_interval=-1,
        reduce_memory_delete_vehicle_route_pref=True,
    )
    for r in range(GRID):
        for c in range(GRID):
            here = node_name(r, c)
            signal = [CYCLE_S / 2, CYCLE_S / 2] if here in SIGNALS else [0]
            world.addNode(here, c * BLOCK_M, -r * BLOCK_M, signal=signal)
    for a, b, east_west in links():
        world.addLink(
            link_name(a, b),
            a,
            b,
            length=BLOCK_M,
            free_flow_speed=FREE_SPEED_MS,
            jam_density=JAM_DENSITY,
            signal_group=[0 if east_west else 1],
        )
    rng = np.random.default_rng(seed)
    factors = rng.uniform(0.85, 1.15, size=(len(OD_PAIRS), 24))
    first_hour = start.hour
    for h in range(-(-duration_s // 3600)):
        t0, t1 = h * 3600.0, min((h + 1) * 3600.0, float(duration_s))
        for i, (orig, dest, peak) in enumerate(OD_PAIRS):
            hour = (first_hour + h) % 24
            flow = demand_veh_h(peak, hour, float(factors[i, hour])) / 3600.0
            world.adddemand(orig, dest, t0, t1, flow=flow)
    world.finalize_scenario()
    return world


def parse_asset_id(asset_id: str) -> tuple[str, str]:
    """Split ``link:n10-n11`` / ``node:n11`` / ``od:n10-n13`` into (kind, name), checking it exists."""
    kind, _, name = asset_id.partition(":")
    known = {
        "link": {link_name(a, b) for a, b, _ in links()},
        "node": {node_name(r, c) for r in range(GRID) for c in range(GRID)},
        "od": {f"{o}-{d}" for o, d in MONITORED_OD},
    }
    if kind not in known or name not in known[kind]:
        raise UnknownAsset(
            f"no transportation asset {asset_id!r} (ids look like link:n10-n11, node:n11, od:n10-n13)"
        )
    return kind, name


def completed_trips(world: Any) -> int:
    """Cars (platoons × DELTAN) that have reached their destination."""
    return int(sum(v.state == "end" for v in world.VEHICLES.values())) * DELTAN


def east_west(link: Any) -> bool:
    """Whether a link runs east-west (its signal group is 0; north-south ones are group 1)."""
    return bool(link.start_node.y == link.end_node.y)


def free_flow_time(world: Any, orig: str, dest: str) -> float:
    """Free-flow time of the shortest route between two nodes (a grid: Manhattan distance)."""
    a, b = world.get_node(orig), world.get_node(dest)
    return float(abs(a.x - b.x) + abs(a.y - b.y)) / float(world.LINKS[0].u)


def approaches(node: str) -> tuple[str, ...]:
    """The links that end at ``node`` (its approaches), in :func:`links` order."""
    return tuple(link_name(a, b) for a, b, _ in links() if b == node)


def exits(node: str) -> tuple[str, ...]:
    """The links that start at ``node`` (every vehicle that passes it enters one), in :func:`links` order."""
    return tuple(link_name(a, b) for a, b, _ in links() if a == node)
