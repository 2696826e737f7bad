"""The sewer network the sewage twin simulates (``network.inp``, SWMM 5), and how its parts are named.

No SWMM model ships with pyswmm, so this package ships its own: a small *combined* sewer, the kind
whose lift station and overflow matter to a city during a storm.

::

    S1 (12 ha, 60 % imperv.) ─► J1 ─C1─┐
                                       ├─► J3 ─C3─► J4 ─C4─► WW ══P1/P2══► J5 ─FM─► WWTP (treatment works)
    S2 (10 ha, 45 % imperv.) ─► J2 ─C2─┘   │        │         (wet well)   (discharge chamber)
    S3 ( 8 ha, 70 % imperv.) ─────────► J3  OR1      W_CSO
                                           ▼        ▼
                                  ST1 (storm tank) CSO (river outfall, flap-gated)

* **Rain** falls on one gauge ``RG1`` (mm/h, Horton infiltration); the twin sets it at run time
  (:meth:`SewageTwin.set_rain`), the file's own series is dry.
* **Dry-weather flow** of ~0.024 m³/s (about 7,500 people at 280 l/d) enters J1–J3 on a diurnal
  pattern, so the wet well cycles all day even without rain.
* **Wet well WW**: 150 m² plan area, invert 12.0 m, 6 m deep; the trunk sewer C4 enters 3.5 m above
  its floor. Two identical submersible pumps lift to J5 (22.0 m): about 0.37 m³/s each at the
  ~9 m static head. The *duty* pump P1 runs between 1.8 m (start) and 0.6 m (stop); the
  *standby* P2 between 2.6 m and 1.0 m — both rules are the twin's PLC (:mod:`.station`), not
  SWMM control rules, so faults and operator commands can override them.
* **CSO**: the transverse weir ``W_CSO`` in chamber J4 spills to the river once the water in J4
  stands 0.9 m deep — which, with the pumps running, only an intense storm causes, and which a
  stopped lift station causes with moderate rain: the wet well fills, the trunk backs up and
  the chamber overflows. That is the physics, not a flag.
* **Diversion**: the side orifice ``OR1`` (0.5 m, at J3's invert) can divert trunk flow into the
  1,600 m³ offline storm tank ST1; it is closed in normal operation. At the invert (a penstock to the
  tank, as a regulator chamber has) it takes the dry-weather flow too: 0.1 m above it, it took none
  of it, and a blocked interceptor below the CSO weir spilled 189 m³ in six dry hours with the gate
  open as without it (`tests/controller/test_responses.py`).

Routing is SWMM dynamic wave at a fixed 5 s step, so backwater and surcharge are real.

Asset ids (≤ 32 characters, written on-chain) carry the element type: ``pump:P1``, ``conduit:C3``,
``storage:WW``, ``junction:J4``, ``outfall:CSO``, ``orifice:OR1``, ``raingage:RG1``, and the whole
lift station ``station:PS1`` (both pumps, one power supply).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from sectors._twin import UnknownAsset

__all__ = [
    "CONDUITS",
    "CSO_OUTFALL",
    "DIVERSION",
    "DUTY_PUMP",
    "INP_FILE",
    "JUNCTIONS",
    "RAIN_GAUGE",
    "STANDBY_PUMP",
    "STATION",
    "STORM_TANK",
    "WET_WELL",
    "AssetKind",
    "asset_id",
    "parse_asset_id",
]

INP_FILE = Path(__file__).with_name("network.inp")
"""The SWMM input file shipped in this package."""

CONDUITS = ("C1", "C2", "C3", "C4", "FM")
JUNCTIONS = ("J1", "J2", "J3", "J4", "J5")
DUTY_PUMP, STANDBY_PUMP = "P1", "P2"
WET_WELL, STORM_TANK = "WW", "ST1"
CSO_OUTFALL, PLANT_OUTFALL = "CSO", "WWTP"
DIVERSION = "OR1"
RAIN_GAUGE = "RG1"
STATION = "PS1"


class AssetKind(StrEnum):
    """The element types the twin exposes; the value is the asset-id prefix."""

    JUNCTION = "junction"
    CONDUIT = "conduit"
    PUMP = "pump"
    STORAGE = "storage"
    OUTFALL = "outfall"
    ORIFICE = "orifice"
    RAINGAGE = "raingage"
    STATION = "station"


_NAMES: dict[AssetKind, tuple[str, ...]] = {
    AssetKind.JUNCTION: JUNCTIONS,
    AssetKind.CONDUIT: CONDUITS,
    AssetKind.PUMP: (DUTY_PUMP, STANDBY_PUMP),
    AssetKind.STORAGE: (WET_WELL, STORM_TANK),
    AssetKind.OUTFALL: (CSO_OUTFALL, PLANT_OUTFALL),
    AssetKind.ORIFICE: (DIVERSION,),
    AssetKind.RAINGAGE: (RAIN_GAUGE,),
    AssetKind.STATION: (STATION,),
}


def asset_id(kind: AssetKind, name: str) -> str:
    return f"{kind.value}:{name}"


def parse_asset_id(target: str) -> tuple[AssetKind, str]:
    """``pump:P1`` -> (PUMP, "P1"); raises UnknownAsset naming the valid ids otherwise."""
    prefix, _, name = target.partition(":")
    try:
        kind = AssetKind(prefix)
    except ValueError:
        raise UnknownAsset(
            f"no sewage asset {target!r}: ids are <type>:<name>, types {', '.join(k.value for k in AssetKind)}"
        ) from None
    if name not in _NAMES[kind]:
        raise UnknownAsset(f"no sewage {kind.value} {name!r}; valid: {', '.join(_NAMES[kind])}")
    return kind, name
