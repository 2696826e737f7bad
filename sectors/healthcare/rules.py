"""The health network's rule (`sectors.invariants`): a mass-casualty incident declared by two systems is a surge.

When the ambulance service declares a mass-casualty incident (MCI) it pre-alerts the receiving
hospital with the casualties it expects to send (`sectors.healthcare.twin`). The dispatch centre's
CAD shows the declaration (``ambulance-hub/mci_<hospital>``) and so does the hospital's emergency
department board (``<hospital>/mci_prealert``), through a different system. So, in the newest row:

- both show casualties for a hospital: an admission surge at that hospital, a FAULT named at once,
  whatever the arrival counts say yet (they rise only as the casualties arrive, tens of minutes
  later; the response, diverting new admissions elsewhere, is worth most before they do);
- one shows them and the other does not: no MCI was declared to the hospital through both paths,
  so that instrument is the one to distrust (`Violation.fault` False: an INTRUSION on it, and the
  oracles quarantine it). Neither system ever shows casualties in normal operation.

An attacker must falsify both the CAD and the hospital's board, at once and alike, to have a
healthy hospital diverted; diversion is reversible and sends patients to hospitals with room.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.messages import FaultKind, Reading
from sectors.invariants import Violation, Window

from ._hospital import DEV_HOSPITALS, DISPATCH

__all__ = ["RULES", "MciPreAlert", "field_fault", "invariants", "rules_for"]

MCI_ON = 0.5  # casualties: a count shown at all (neither system shows any in normal operation)


@dataclass(frozen=True)
class MciPreAlert:
    """The MCI rule for one hospital: `cad` and `board` are the two systems' casualty counts."""

    hospital: str
    cad: str
    board: str

    def sensors(self) -> tuple[str, str]:
        return self.cad, self.board

    def check(self, window: Window) -> list[Violation]:
        if self.cad not in window or self.board not in window or not len(window[self.cad]):
            return []
        cad, board = float(window[self.cad][-1]), float(window[self.board][-1])
        cad_on, board_on = cad >= MCI_ON, board >= MCI_ON
        if cad_on and board_on:
            return [Violation(self.hospital, self.board, (self.cad,),
                              f"{self.hospital}: mass-casualty incident declared, {board:g} casualties "
                              f"pre-alerted (dispatch: {cad:g})")]
        if cad_on != board_on:
            alone, other = (self.cad, self.board) if cad_on else (self.board, self.cad)
            return [Violation(self.hospital, alone, (other,),
                              f"{alone} shows an MCI ({max(cad, board):g} casualties) that {other} does not",
                              fault=False)]
        return []


def rules_for(hospitals: Iterable[str], dispatch: str) -> tuple[MciPreAlert, ...]:
    return tuple(MciPreAlert(h, f"{dispatch}/mci_{h}", f"{h}/mci_prealert") for h in hospitals)


def invariants(window: Window) -> list[Violation]:
    """The rules the newest row breaks, for the development city's hospitals."""
    return [v for rule in RULES for v in rule.check(window)]


RULES = rules_for((h.hospital_id for h in DEV_HOSPITALS), DISPATCH)


def field_fault(readings: Sequence[Reading], asset: str) -> FaultKind | None:
    """What the field shows at a hospital the quorum isolated (`SectorPlugin.field_fault`): an
    admission surge when both systems show an MCI declared for it, as the rule names one; None
    otherwise, and the hospital's name decides (a power loss).

    Without it the controller planned every hospital isolation as a power loss: the storm day's
    surge at hospital-2 found the model's hospital on its generator, "nothing to switch", and no
    admission was diverted. Both systems are asked, as the rule asks them: one falsified board
    cannot turn a power loss's plan into a diversion.
    """
    hospital = asset.partition(":")[0]
    rule = next((r for r in RULES if r.hospital == hospital), None)
    if rule is None:
        return None
    latest = {r.sensor_id: r.value for r in readings}
    shown = latest.get(rule.cad, 0.0) >= MCI_ON and latest.get(rule.board, 0.0) >= MCI_ON
    return FaultKind.ADMISSION_SURGE if shown else None
