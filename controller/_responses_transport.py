"""Transport responses on the signalised grid: close the incident link, retime signals, reopen.

Closing a link (its barrier) makes uxsim's drivers re-plan around it at once, instead of queueing
into a crash that passes a tenth of its capacity. Retiming is chosen, not guessed: the green splits
that would help depend on where the detour goes, and the wrong ones make things worse, so each
candidate (the signals at and next to the asset, east-west share 0.3 or 0.7, or no retiming) is
tried on a copy of the twin (without its same-seed baseline day: the delayed trips that score a
candidate are the copy's own) for :data:`HORIZON_S`, and the one that leaves the fewest delayed
trips wins.

Impact is the travel time added against the baseline day: the mean extra seconds over the
monitored origin-destination pairs, their mean ratio, and the trips delayed or not yet served.
A dark signal (signal outage) is answered as a traffic management centre answers one: it cannot be
closed off (it runs as an all-way stop until the crew repairs it), so the isolate plan diverts
traffic from it (its junction control's ``divert``: signs and the navigation feed mark it as an
all-way stop for routing, `sectors.transportation.twin.DIVERSION_S`), the restore plan retimes the
working signals next to it by trial as for a crash, and the reintegrate plan, once it is repaired,
lifts the diversion and returns those signals to their normal split.
"""

from __future__ import annotations

from controller.plans import ResponsePlan
from core.messages import ActuatorCommand, Sector
from sectors._twin import InvalidCommand
from sectors.transportation import TransportTwin
from sectors.transportation.network import GRID, SIGNALS, node_name, parse_asset_id
from sectors.transportation.twin import DIVERSION_S, STEP_S, TransportService

from ._responses_common import make_plan, require_repaired

__all__ = ["HORIZON_S", "TWIN", "isolate_plan", "reintegrate_plan", "restore_plan", "trial"]

TWIN = TransportTwin
_S = Sector.TRANSPORTATION
HORIZON_S = 300
"""How far a candidate is simulated ahead. At 600 s, five candidates with the twin's baseline day
copied and stepped beside each took the storm day's restore plan 49 wall seconds under load, which at
15x is twelve field minutes of a response; five minutes tell a better timing from a worse already."""
SPLITS = (0.3, 0.7)
MAX_SIGNALS = 2
NORMAL_SPLIT = 0.5


def _impact(service: TransportService) -> dict[str, float | int | str]:
    extra = [service.od_travel_time_s[k] - service.baseline_od_travel_time_s[k] for k in service.od_travel_time_s]
    return {
        "added_travel_s": round(sum(extra) / len(extra), 1),
        "travel_time_ratio": round(service.travel_time_ratio, 3),
        "vehicles_delayed": service.vehicles_delayed,
        "vehicles_unserved": service.vehicles_unserved,
        "vehicles_waiting": service.vehicles_waiting,
    }


def trial(twin: TransportTwin, commands: tuple[ActuatorCommand, ...]) -> TransportService | None:
    """The service :data:`HORIZON_S` after applying ``commands`` to a copy (None: the run ends first)."""
    horizon = min(HORIZON_S, (twin.duration_s - twin.now_s - STEP_S) // STEP_S * STEP_S)
    if horizon < 60:
        return None
    copied = twin.copy_for_trial()
    for cmd in commands:
        copied.apply(cmd)
    copied.advance(horizon)
    return copied.service()


def _ends(target: str) -> tuple[str, tuple[str, ...]]:
    kind, name = parse_asset_id(target)  # raises UnknownAsset with the id format
    if kind == "link":
        return kind, tuple(name.split("-"))
    if kind == "node":
        return kind, (name,)
    raise InvalidCommand(f"transport responses act on links and signalised nodes, not {target}")


def _signals_near(twin: TransportTwin, target: str) -> list[str]:
    """Working signals at the asset's ends first, then their grid neighbours (at most MAX_SIGNALS).

    A junction's own signal is never among them: dark, it has no timing to change, and once repaired
    it runs its own plan; the reintegrate plan must find the same neighbours the restore plan retimed."""
    kind, ends = _ends(target)
    near: list[str] = [n for n in ends if n in SIGNALS] if kind == "link" else []
    for n in ends:
        r, c = int(n[1]), int(n[2])
        for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            if 0 <= r + dr < GRID and 0 <= c + dc < GRID:
                neighbour = node_name(r + dr, c + dc)
                if neighbour in SIGNALS and neighbour not in near:
                    near.append(neighbour)
    return [n for n in near if f"node:{n}" not in twin.faults][:MAX_SIGNALS]


def isolate_plan(twin: TransportTwin, target: str) -> ResponsePlan:
    kind, ends = _ends(target)
    now = _impact(twin.service())
    if kind == "node":
        twin.actuator_id(target)  # a junction without a signal has no outage to answer: UnknownAsset
        if ends[0] in twin.diverted:
            return make_plan(_S, target, "isolate", (), now, f"traffic is already diverted from {target}")
        # no trial: diverting from a junction that passes a third of its peak traffic is what the
        # centre does at once (as closing a crash site); the restore plan's retiming is tried
        return make_plan(_S, target, "isolate", (twin.command(target, "divert"),), now,
                         f"divert traffic from the dark signal {target}: it runs as an all-way stop until "
                         f"repaired, and routing weighs each approach {DIVERSION_S:.0f} s more, so trips with a "
                         "detour take it (its neighbours are retimed by the restore plan)")
    commands: tuple[ActuatorCommand, ...] = ()
    if ends[0] + "-" + ends[1] not in twin.closed:
        commands = (twin.command(target, "close"),)
    # no trial here: closing the crash site is decided without one, and the restore plan that follows
    # tries "no retiming" with the link closed first (its ``vehicles_delayed_if_unchanged``); a trial
    # here cost the city's response 10 wall seconds under a storm day's load (150 field seconds at 15x)
    return make_plan(_S, target, "isolate", commands, now,
                     f"close {target} so traffic re-routes instead of queueing into the incident")


def restore_plan(twin: TransportTwin, target: str) -> ResponsePlan:
    _ends(target)
    candidates: list[tuple[ActuatorCommand, ...]] = [()]
    for node in _signals_near(twin, target):
        candidates += [(twin.command(f"node:{node}", "set", split),) for split in SPLITS
                       if abs(twin.splits[node] - split) > 1e-9]
    scored: list[tuple[tuple[int, int, int], tuple[ActuatorCommand, ...], TransportService]] = []
    for commands in candidates:
        service = trial(twin, commands)
        if service is None:
            break
        scored.append(((service.vehicles_delayed, -service.trips_completed, len(commands)), commands, service))
    if not scored:
        return make_plan(_S, target, "restore", (), _impact(twin.service()),
                         "the traffic run ends before a retiming could be judged")
    _, best, service = min(scored, key=lambda s: s[0])
    impact = {**_impact(service), "candidates_tried": len(scored),
              "vehicles_delayed_if_unchanged": scored[0][2].vehicles_delayed}
    if not best:
        return make_plan(_S, target, "restore", (), impact,
                         f"no retiming of {', '.join(_signals_near(twin, target)) or 'a nearby signal'} "
                         f"beats the current timing over {HORIZON_S} s")
    cmd = best[0]
    return make_plan(_S, target, "restore", best, impact,
                     f"retime {cmd.asset_id} to east-west share {cmd.value}: fewest delayed trips of "
                     f"{len(scored)} timings tried over {HORIZON_S} s")


def reintegrate_plan(twin: TransportTwin, target: str) -> ResponsePlan:
    kind, ends = _ends(target)
    require_repaired(_S, target, twin.faults)
    commands: list[ActuatorCommand] = []
    if kind == "link" and "-".join(ends) in twin.closed:
        commands.append(twin.command(target, "open"))
    if kind == "node" and ends[0] in twin.diverted:
        commands.append(twin.command(target, "undivert"))
    commands += [twin.command(f"node:{n}", "set", NORMAL_SPLIT)
                 for n in _signals_near(twin, target) if abs(twin.splits[n] - NORMAL_SPLIT) > 1e-9]
    undo = "lift the diversion" if kind == "node" else "reopen it"
    return make_plan(_S, target, "reintegrate", commands, _impact(twin.service()),
                     f"{target} is clear: {undo} and return nearby signals to their normal split")
