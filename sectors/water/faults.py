"""Breaks and leaks as wntr models them: an orifice at a junction, Q = Cd·A·sqrt(2·g·p).

A break on a *pipe* happens somewhere along it, not at a junction, so the pipe is split at its
midpoint (``wntr.morph.split_pipe``: ``<pipe>`` and ``<pipe>_B`` joined by junction
``<pipe>_brk``) and the orifice opens there; the new elements join the pipe's valve segment. A
break on a *junction* opens the orifice at the junction itself.

The orifice area is a fraction of the cross-section of the largest adjoining pipe, so the same
severity means a bigger outflow on a bigger main: 0.2 for a break (a split main), 0.01 for a leak
(a cracked joint). wntr's leak model only runs in the WNTRSimulator — which the twin uses anyway.
"""

from __future__ import annotations

import math
from typing import Any

import wntr
from wntr.network.controls import ControlAction

from core.messages import FaultKind
from sectors._twin import InvalidFault

from .network import AssetKind
from .segments import ValveSegments

__all__ = ["BREAK_AREA_FRACTION", "DISCHARGE_COEFF", "LEAK_AREA_FRACTION", "close_orifice", "open_orifice"]

BREAK_AREA_FRACTION = 0.2
"""Default opening of a pipe break, as a fraction of the pipe's cross-section (a split main)."""

LEAK_AREA_FRACTION = 0.01
"""Default opening of a leak: a cracked joint, small next to a break."""

DISCHARGE_COEFF = 0.75
"""wntr's default orifice discharge coefficient for leaks."""


def open_orifice(
    wn: Any,
    segments: ValveSegments,
    kind: FaultKind,
    element_kind: AssetKind,
    name: str,
    severity: float | None,
) -> tuple[str, float]:
    """Start a break or leak on pipe or junction ``name``; returns (leaking junction, area m²)."""
    default = BREAK_AREA_FRACTION if kind is FaultKind.PIPE_BREAK else LEAK_AREA_FRACTION
    fraction = default if severity is None else severity
    if not 0.0 < fraction <= 1.0:
        raise InvalidFault(f"severity is a fraction of the pipe cross-section in (0, 1], got {fraction}")
    if element_kind is AssetKind.JUNCTION:
        junction = name
    elif element_kind is AssetKind.PIPE:
        junction, half = f"{name}_brk", f"{name}_B"
        if junction not in wn.junction_name_list:  # a pipe broken before keeps its split
            wntr.morph.split_pipe(wn, name, half, junction, split_at_point=0.5, return_copy=False)
            segments.alias(junction, name)
            segments.alias(half, name)
    else:
        raise InvalidFault(
            f"{kind.value} needs a pipe:NAME or junction:NAME target, not {element_kind.value}:{name}"
        )
    diameters = [
        float(wn.get_link(k).diameter)
        for k in wn.get_links_for_node(junction)
        if wn.get_link(k).link_type == "Pipe"
    ]
    if not diameters:
        raise InvalidFault(f"junction {junction} has no adjoining pipe to size a {kind.value} from")
    area = fraction * math.pi * max(diameters) ** 2 / 4.0
    node = wn.get_node(junction)
    node.add_leak(wn, area=area, discharge_coeff=DISCHARGE_COEFF)
    ControlAction(node, "leak_status", True).run_control_action()  # from the next solve on
    return junction, area


def close_orifice(wn: Any, junction: str) -> None:
    """Repair: the junction stops leaking (a split pipe stays split; hydraulically it is whole)."""
    node = wn.get_node(junction)
    node.remove_leak(wn)
    ControlAction(node, "leak_status", False).run_control_action()
