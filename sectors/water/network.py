"""The water network the twin simulates, and how its elements are named outside wntr.

Why these settings:

* **Net3** (EPANET example 3, shipped with wntr): two sources, two pumps, three tanks and 92
  junctions — small enough to solve in a fraction of a second, rich enough for pump/tank dynamics.
* **Pressure-dependent demand** (wntr ``WNTRSimulator``, ``demand_model='PDD'``): under a break a
  demand-driven model would keep delivering the full demand at negative pressure; PDD delivers
  ``(p - p_min) / (p_req - p_min)`` to the power 0.5 of it. The pressures are the ones the WNTR
  segment-break demo uses on Net3: minimum 3.52 m (5 psi, nothing delivered below it) and required
  14.06 m (20 psi, full demand above it). A junction below the minimum is *without water*.

wntr names are not unique across element types (Net3 has a junction ``10`` and a pump ``10``), so
every asset id outside this package carries its type: ``junction:10``, ``pump:10``, ``pipe:177``,
``tank:1``, ``reservoir:River``, ``ivalve:7`` (an isolation valve of the valve layer). Ids must fit
the shared ``AssetId`` (≤ 32 characters) because they are written on-chain.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import wntr

from sectors._twin import UnknownAsset

__all__ = [
    "MINIMUM_PRESSURE_M",
    "REQUIRED_PRESSURE_M",
    "AssetKind",
    "asset_id",
    "load_network",
    "net3_path",
    "parse_asset_id",
]

MINIMUM_PRESSURE_M = 3.52
"""PDD: no demand is delivered below this pressure (5 psi, WNTR segment-break demo)."""

REQUIRED_PRESSURE_M = 14.06
"""PDD: the full demand is delivered at or above this pressure (20 psi, WNTR segment-break demo)."""

MAX_ASSET_ID = 32


class AssetKind(StrEnum):
    """The element types the twin exposes; the value is the asset-id prefix."""

    JUNCTION = "junction"
    TANK = "tank"
    RESERVOIR = "reservoir"
    PIPE = "pipe"
    PUMP = "pump"
    VALVE = "valve"
    ISOLATION_VALVE = "ivalve"


def net3_path() -> Path:
    """Net3.inp as shipped inside the installed wntr package (no network file in the repo)."""
    return Path(os.path.dirname(cast(str, wntr.__file__))) / "library" / "networks" / "Net3.inp"


def load_network(
    inp_file: Path | None = None,
    *,
    minimum_pressure_m: float = MINIMUM_PRESSURE_M,
    required_pressure_m: float = REQUIRED_PRESSURE_M,
) -> Any:
    """Read an EPANET file (Net3 by default) into a wntr model set up for PDD stepping.

    Returns a ``wntr.network.WaterNetworkModel`` (typed ``Any``: wntr ships no type hints).
    Raises :class:`ValueError` when an element name would make an asset id too long.
    """
    if not 0.0 <= minimum_pressure_m < required_pressure_m:
        raise ValueError(
            f"need 0 <= minimum pressure < required pressure, got {minimum_pressure_m} and {required_pressure_m}"
        )
    wn = wntr.network.WaterNetworkModel(str(inp_file or net3_path()))
    wn.options.hydraulic.demand_model = "PDD"
    wn.options.hydraulic.minimum_pressure = minimum_pressure_m
    wn.options.hydraulic.required_pressure = required_pressure_m
    for kind, names in _names_by_kind(wn).items():
        for name in names:
            asset_id(kind, name)  # validates the length now rather than at the first reading
    return wn


def _names_by_kind(wn: Any) -> dict[AssetKind, list[str]]:
    return {
        AssetKind.JUNCTION: list(wn.junction_name_list),
        AssetKind.TANK: list(wn.tank_name_list),
        AssetKind.RESERVOIR: list(wn.reservoir_name_list),
        AssetKind.PIPE: list(wn.pipe_name_list),
        AssetKind.PUMP: list(wn.pump_name_list),
        AssetKind.VALVE: list(wn.valve_name_list),
    }


def asset_id(kind: AssetKind, name: str) -> str:
    """The asset id of wntr element ``name`` of type ``kind`` (``pipe:177``)."""
    out = f"{kind.value}:{name}"
    if len(out) > MAX_ASSET_ID:
        raise ValueError(f"asset id {out!r} is longer than {MAX_ASSET_ID} characters")
    return out


def parse_asset_id(value: str) -> tuple[AssetKind, str]:
    """Split ``pipe:177`` into ``(AssetKind.PIPE, "177")``; unknown prefixes raise UnknownAsset."""
    prefix, sep, name = value.partition(":")
    try:
        kind = AssetKind(prefix)
    except ValueError:
        kind = None
    if not sep or not name or kind is None:
        valid = ", ".join(f"{k.value}:NAME" for k in AssetKind)
        raise UnknownAsset(f"{value!r} is not a water asset id (expected one of {valid})")
    return kind, name
