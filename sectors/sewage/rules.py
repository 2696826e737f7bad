"""The lift station's physics rules (`sectors.invariants`): a pump the level calls for must run.

The PLC (`sectors.sewage.station`) starts a pump when the wet well reaches its start level and stops
it only when the level has fallen to its stop level. So, read off the SCADA rows alone:

- a pump that is off (run contact open *and* no flow) while the wet well has stood above its
  start level for two rows has failed: the PLC scanned in between and would have started it;
- a pump that was running and has been off for two rows, although the level has not fallen to
  its stop level since, has failed: nothing in automatic control stops it there.

The station's power meter (`sectors.invariants.StationPower`) is the third witness: a stop it
corroborates (the motor draws nothing) is named after two rows, one it contradicts or cannot
judge after `OFF_ROWS`, when the balance has seen enough of a missing flow to tell. A running pump
that trips shows on two systems in the same row — its run contact and flow meter go to zero, and
the meter's draw falls by its motor's share (12 kW plus 90.6 kW per m³/s it lifted) — and that
stop is named in its first row (`LevelControlledPump.first_row`): the 30-second rows plus the
oracles' lag must name a failure within 60 field seconds (issue 16). The price: an attacker who
falsifies both the pump's SCADA and the station's meter alike has the station isolated for a row
before the balance names the contradiction, in the next row.

Both are checked against the wet well's mass balance (inflow through the trunk sewer C4, outflow
through the two pumps, 150 m² of plan area in ``network.inp``): a falsified level, or a running
pump reported stopped, breaks it and is called what it is, an instrument to distrust. While no
pump runs the well only integrates C4's flow, and its level may drift from it by 5 mm plus 4 % of
the inflow a window (the twin's idle wells: 2 mm at most), so a level ramped by 0.03 m/h or more
shows before it can call for an idle pump. A stop also reported on C4 (its flow falling by the
pump's as the pump stops) while the power meter shows the motor turning is a forgery.

The sewers have rules of their own (issue 16: a blockage was detected in none of its runs, and a
CSO spilling in dry weather had no case). A sewer that carries a town's sanitary flow never runs dry:
one whose meter falls under a fifth of its night flow is blocked, once its witness agrees — for the
trunk C3 the flow below it (C4 and the weir) falling, for the interceptor C4 the CSO chamber J4
filling behind it — or its meter lies, if the witness still says it flows
(`sectors.invariants.BlockedSewer`). C4's flow is what J4's depth drives (Manning, while the wet well
stands below C4's outlet): a depth that drives far more than C4 carries, with C3, C4 and the weir
agreeing and nothing spilling, is a level that lies (`ConduitRating`). And the weir spilling on its
meter and its totaliser with no rain and dry-weather inflow is a dry-weather overflow, named to C4
if C4 carries under a quarter of what J4's depth drives (or has gone dry), else to the outfall
(`DryWeatherOverflow`). Their thresholds are stated below with the normal runs they were read from.

The pump rules are `sectors.invariants.LevelControlledPump`'s. The margins (`MARGIN_M` above a start
level, `STOP_MARGIN_M` above a stop level) hold them clear of the PLC's 30-second scan and of a
storm refilling the well between a stop and the next sample; `MARGIN_M` exceeds what the balance
lets a quiet well's level drift unseen, so no falsified level calls for an idle healthy pump.
"""

from __future__ import annotations

from sectors.invariants import (
    BlockedSewer,
    ConduitRating,
    DryWeatherOverflow,
    LevelControlledPump,
    StationPower,
    Violation,
    WellBalance,
    Window,
)

from .network import CONDUITS, CSO_OUTFALL, RAIN_GAUGE, STATION, WET_WELL, AssetKind, asset_id
from .sensors import _GEOMETRY, AUX_KW, KW_PER_M3S, MANNING_N, RUNNING_KW
from .station import RULES

__all__ = ["BALANCE", "DRY_OVERFLOW", "LEVEL", "MARGIN_M", "OFF_ROWS", "POWER", "PUMPS", "REACHES", "ROW_S",
           "STOP_MARGIN_M", "WET_WELL_AREA_M2", "invariants"]

MARGIN_M = 0.15
"""Above a start level by this much for two rows, an idle pump has failed: the PLC scanned in between."""
STOP_MARGIN_M = 0.4
"""A pump that stopped while the well never fell within this much of its stop level has failed."""
ROW_S = 30
"""SCADA's row spacing (the plug-in's ``report_period_s``), the balance's time step."""
WET_WELL_AREA_M2 = 150.0
"""The wet well's plan area (``network.inp`` [STORAGE] WW: FUNCTIONAL, constant 150)."""
LEVEL = f"{asset_id(AssetKind.STORAGE, WET_WELL)}/level_m"
_PUMP_IDS = tuple(asset_id(AssetKind.PUMP, pump) for pump in RULES)
BALANCE = WellBalance(LEVEL, inflows=(f"{asset_id(AssetKind.CONDUIT, CONDUITS[3])}/flow_m3s",),
                      outflows=tuple(f"{p}/flow_m3s" for p in _PUMP_IDS), statuses=tuple(f"{p}/status" for p in _PUMP_IDS),
                      area_m2=WET_WELL_AREA_M2, row_s=ROW_S, row_m=0.04, per_change_m=0.04, idle_m=0.005)
"""Per-row tolerances for 30-second rows: over weeks of the twin's weather the largest normal residual
was 0.017 m in a row (0.034 m in a row where a pump started or stopped), where a running pump's flow
missing from the meters moves the level ~0.07 m a row; at minute rows it was 0.1 m a row."""
POWER = StationPower(f"{asset_id(AssetKind.STATION, STATION)}/power_kw", AUX_KW, RUNNING_KW, KW_PER_M3S, _PUMP_IDS)
OFF_ROWS = 4
"""Rows a pump must be reported off, uncorroborated, before it is called failed: two minutes, which a
running pump's missing flow needs to break the balance (two 30-second rows did not)."""
PUMPS = tuple(LevelControlledPump(pid, LEVEL, rule.start_m, rule.stop_m, rising=True, margin_m=MARGIN_M,
                                  stop_margin_m=STOP_MARGIN_M, balance=BALANCE, off_rows=OFF_ROWS, power=POWER,
                                  corroborated_rows=2, first_row=True)
              for pid, rule in zip(_PUMP_IDS, RULES.values(), strict=True))


# -- the sewers: a blockage, and an overflow in dry weather (`sectors.invariants.BlockedSewer` ...) ------
# Thresholds from the twin's normal runs at 30-second rows: a dry day (24 h), storms of 25, 40 and 45 mm/h
# (3 h each), and 25 h of drawn weather twice (`weather.rain_series` seeds 3 and 13); never the fault runs.

def _flow(kind: AssetKind, name: str) -> str:
    return f"{asset_id(kind, name)}/flow_m3s"


C1, C2, C3, C4 = (_flow(AssetKind.CONDUIT, c) for c in CONDUITS[:4])
SPILL = _flow(AssetKind.OUTFALL, CSO_OUTFALL)
SPILL_VOLUME = f"{asset_id(AssetKind.OUTFALL, CSO_OUTFALL)}/volume_m3"
J4_LEVEL = f"{asset_id(AssetKind.JUNCTION, 'J4')}/level_m"
RAIN = f"{asset_id(AssetKind.RAINGAGE, RAIN_GAUGE)}/intensity_mm_h"
NIGHT_SHARE = 0.30
"""The sanitary flow's lowest hour (``network.inp`` [PATTERNS] DIURNAL, 02:00–04:00). The normal runs'
least flows were exactly that: C1 0.0030, C2 0.0024, C3 and C4 0.0072 m³/s (rain only adds)."""
DWF_M3S = {"J1": 0.010, "J2": 0.008, "J3": 0.006}
"""Sanitary baseline per manhole (``network.inp`` [DWF])."""
DRY_SHARE = 0.2
"""A sewer under a fifth of its night flow carries next to nothing (a blocked one reads ~1e-6 m³/s); no
normal row came within five times of it."""
TRUNK_BASE_M3S = NIGHT_SHARE * sum(DWF_M3S.values())
_C4 = BlockedSewer(asset_id(AssetKind.CONDUIT, "C4"), C4, TRUNK_BASE_M3S, head=J4_LEVEL, rise_m=0.0025,
                   dry_share=DRY_SHARE, fed=(C3,))
"""C4, the interceptor below the CSO weir: blocked, the CSO chamber J4 fills (2.3 mm a row at the night
flow); the largest rise of J4 in two dry-weather rows of the normal runs was 1.25 mm, so 2.5 mm."""
_C3 = BlockedSewer(asset_id(AssetKind.CONDUIT, "C3"), C3, TRUNK_BASE_M3S, carried=(C4, SPILL), fell_share=0.1,
                   dry_share=DRY_SHARE, after=(_C4,))
"""C3, the trunk into the CSO chamber, whose outflow (C4 and the weir) has no other metered source: blocked,
C4 drains what its pipe holds and falls by 14 % of C3's flow in two rows; in dry weather C4 never fell by
more than 4.3 % of the night flow in two rows, so 10 %."""
_C1 = BlockedSewer(asset_id(AssetKind.CONDUIT, "C1"), C1, NIGHT_SHARE * DWF_M3S["J1"], dry_share=DRY_SHARE,
                   after=(_C3,))
_C2 = BlockedSewer(asset_id(AssetKind.CONDUIT, "C2"), C2, NIGHT_SHARE * DWF_M3S["J2"], dry_share=DRY_SHARE,
                   after=(_C3,))
"""C1 and C2 meet at J3, which has a catchment of its own (S3 and 6 L/s of sanitary flow) unmetered: C3's
flow moves with it as much as with theirs (C3 less C2, scaled by C2, varied 0.71–1.17 over eight dry
rows; a blocked C1 moves it to 0.84), so the meter's dryness is the evidence."""
REACHES = (_C4, _C3, _C1, _C2)
"""Downstream first: a blockage below is named before the backwater it raises above it."""
C4_OUTLET_M = 3.5
"""C4 enters the wet well 3.5 m above its floor (``network.inp`` [CONDUITS] OutOffset): below that it
discharges freely and J4's depth drives its flow. 0.3 m under it, the relation is left unread."""
C4_RATING = ConduitRating(asset_id(AssetKind.CONDUIT, "C4"), C4, J4_LEVEL, LEVEL, tail_max_m=C4_OUTLET_M - 0.3,
                          diameter_m=_GEOMETRY["C4"][0], slope=_GEOMETRY["C4"][1], n=MANNING_N, inflow=C3,
                          spill=SPILL, low_share=0.25, min_depth_m=0.03, dry_m3s=DRY_SHARE * TRUNK_BASE_M3S,
                          agree_m3s=0.005)
"""C4 against J4's depth: in the normal runs it carried 0.97–1.0 of Manning's flow in dry weather and
never under 0.5 of it (a storm's recession, C4 full), so a quarter; J4's balance (C3 in, C4 and the weir
out) was within 0.0041 m³/s in every dry-weather row, so 0.005."""
DRY_OVERFLOW = DryWeatherOverflow(asset_id(AssetKind.OUTFALL, CSO_OUTFALL), SPILL, SPILL_VOLUME, RAIN, C3,
                                  dry_inflow_m3s=0.05, tail=LEVEL, tail_max_m=C4_OUTLET_M - 0.3, row_s=ROW_S,
                                  below=(_C4, C4_RATING))
"""Dry weather: no rain on the gauge in the window and C3 under 0.05 m³/s (the sanitary peak is 0.036,
1.5 × 24 L/s; the normal runs' weir spilled only with C3 above 0.65 m³/s). The totaliser and the spill
meter agreed within 0.4 m³ a row in every storm, so half the metered volume is a wide margin."""


def invariants(window: Window) -> list[Violation]:
    """The rules the newest row breaks (see the module docstring): the pumps', then the dry-weather
    overflow (it names the blockage below the weir in its own words), then each sewer, downstream first."""
    out = [v for pump in PUMPS for v in pump.check(window)]
    sewers = DRY_OVERFLOW.check(window)
    for rule in (*REACHES, C4_RATING):
        named = {v.asset for v in sewers}
        sewers += [v for v in rule.check(window) if v.asset not in named]
    return out + sewers
