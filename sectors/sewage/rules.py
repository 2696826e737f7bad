"""The lift station's physics rules (`sectors.invariants`): a pump the level calls for must run.

The PLC (`sectors.sewage.station`) starts a pump when the wet well reaches its start level and stops
it only when the level has fallen to its stop level. So, read off the SCADA rows alone:

- a pump that is off (run contact open *and* no flow) while the wet well has stood above its
  start level for two rows has failed: the PLC scanned in between and would have started it;
- a pump that was running and is now off, although the level has not fallen to its stop level
  since, has failed: nothing in automatic control stops it there.

The rules are `sectors.invariants.LevelControlledPump`'s. The margins (`MARGIN_M` above a start
level, `STOP_MARGIN_M` above a stop level) hold them clear of the PLC's one-minute scan and of a
storm refilling the well between a stop and the next sample.
"""

from __future__ import annotations

from sectors.invariants import LevelControlledPump, Violation, Window

from .network import WET_WELL, AssetKind, asset_id
from .station import RULES

__all__ = ["LEVEL", "MARGIN_M", "PUMPS", "STOP_MARGIN_M", "invariants"]

MARGIN_M = 0.05
"""Above a start level by this much for two rows, an idle pump has failed: the PLC scanned in between."""
STOP_MARGIN_M = 0.4
"""A pump that stopped while the well never fell within this much of its stop level has failed."""
LEVEL = f"{asset_id(AssetKind.STORAGE, WET_WELL)}/level_m"
PUMPS = tuple(LevelControlledPump(asset_id(AssetKind.PUMP, pump), LEVEL, rule.start_m, rule.stop_m, rising=True,
                                  margin_m=MARGIN_M, stop_margin_m=STOP_MARGIN_M) for pump, rule in RULES.items())


def invariants(window: Window) -> list[Violation]:
    """The rules the newest row breaks (see the module docstring)."""
    return [v for pump in PUMPS for v in pump.check(window)]
