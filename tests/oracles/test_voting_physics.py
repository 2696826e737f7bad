"""A physics rule's verdict rests on every instrument it read; a model's on the sensor it names first.

`oracles.node.voting` makes a fault vote moot when its evidence rests on a quarantined sensor.
For a physics verdict that is any instrument it names: a wet-well level found falsified (and
quarantined) must not go on failing a healthy pump through the rule once the step that gave it
away has left the oracle's window. A model's verdict keeps its old reading, so that one
quarantined sensor does not blind a sector to real faults in the rest.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from chain.recorder import canonical_payload
from core.messages import Sector, VerdictKind
from oracles.detect.features import Finding
from oracles.node.voting import _quarantined_evidence
from oracles.sector_model import PHYSICS_NOTE, SectorModel
from sectors.invariants import Violation


def _payload(reason: str, *sensors: str) -> dict[str, object]:
    return {"reason": reason, "sensors": [[s, 0.5] for s in sensors]}


def test_a_physics_fault_resting_on_a_quarantined_level_is_moot() -> None:
    payload = _payload("MSET score 0.1; " + PHYSICS_NOTE + "pump:P1 is off ...", "pump:P1/status",
                       "storage:WW/level_m", "pump:P1/flow_m3s")
    assert _quarantined_evidence(payload, {"storage:WW/level_m"}) == "storage:WW/level_m"
    assert _quarantined_evidence(payload, {"junction:J4/level_m"}) is None


def test_a_model_fault_is_moot_only_for_its_first_sensor() -> None:
    payload = _payload("MSET score 9; physically consistent disturbance", "conduit:C4/flow_m3s",
                       "storage:WW/level_m")
    assert _quarantined_evidence(payload, {"storage:WW/level_m"}) is None
    assert _quarantined_evidence(payload, {"conduit:C4/flow_m3s"}) == "conduit:C4/flow_m3s"


def test_odd_payloads_are_not_moot() -> None:
    assert _quarantined_evidence({}, {"a/x"}) is None
    assert _quarantined_evidence({"reason": PHYSICS_NOTE, "sensors": [7, [], None, ["a/x"]]}, {"a/x"}) == "a/x"


# --- review finding 1: what a pump rule's verdict rests on, and what it was only checked against ---

_FAKE = SimpleNamespace(sector=Sector.SEWAGE, assets={"storage:WW/level_m": "storage:WW",
                                                     "conduit:C4/flow_m3s": "conduit:C4"},
                        model=SimpleNamespace(threshold=1.0, detector=SimpleNamespace(label="MSET")))
_FAKE._physics_verdict = lambda *a, **kw: SectorModel._physics_verdict(_FAKE, *a, **kw)  # type: ignore[arg-type]


def _rule_verdict(violations: list[Violation], findings: tuple[Finding, ...] = ()) -> dict[str, object]:
    """The payload an oracle records for a physics fault (`SectorModel._physics_verdict`)."""
    v = SectorModel._physics_verdict(_FAKE, violations, 2.0, findings, datetime(2026, 1, 1, tzinfo=UTC),  # type: ignore[arg-type]
                                     kind=VerdictKind.FAULT)
    return dict(json.loads(canonical_payload({"reason": v.reason, "sensors": list(v.sensors)})))


def test_a_quarantined_balance_instrument_does_not_make_a_pump_fault_moot() -> None:
    rule = Violation("pump:P1", "pump:P1/status", ("storage:WW/level_m", "pump:P1/flow_m3s"), "P1 is off ...",
                     checked=("conduit:C4/flow_m3s", "pump:P2/flow_m3s", "station:PS1/power_kw"))
    # the quarantined inflow meter also trips a first-pass check: still only context for the rule
    payload = _rule_verdict([rule], (Finding("conduit:C4/flow_m3s", "range", "C4 out of range"),))
    for context in ("conduit:C4/flow_m3s", "pump:P2/flow_m3s", "station:PS1/power_kw"):
        assert _quarantined_evidence(payload, {context}) is None, context
    for own in ("storage:WW/level_m", "pump:P1/flow_m3s", "pump:P1/status"):
        assert _quarantined_evidence(payload, {own}) == own



def test_a_balance_that_cannot_say_which_meter_lies_distrusts_none_unless_the_model_can() -> None:
    """A biased inflow meter breaks the balance as a ramped level does: the honest level must not be
    quarantined for it. The model's own suspect, if it is one of the rule's, is distrusted; else nothing."""
    suspects = ("storage:WW/level_m", "conduit:C4/flow_m3s", "pump:P1/flow_m3s", "pump:P2/flow_m3s")
    rule = Violation("pump:P1", suspects[0], (), "P1 is off ..., but the instruments disagree", fault=False,
                     suspects=suspects)
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def distrust(suspect: str | None, *rules: Violation) -> tuple[VerdictKind, str, str]:
        v = SectorModel._distrust(_FAKE, list(rules), suspect, 2.0, (), at)  # type: ignore[arg-type]
        return v.kind, v.asset_id, v.sensors[0]

    assert distrust("conduit:C4/flow_m3s", rule) == (VerdictKind.INTRUSION, "conduit:C4", "conduit:C4/flow_m3s")
    assert distrust("raingage:RG1/intensity_mm_h", rule)[0] is VerdictKind.ANOMALY
    assert distrust(None, rule)[0] is VerdictKind.ANOMALY
    step = Violation("pump:P1", suspects[0], (), "a step", fault=False, suspects=suspects[:1])
    assert distrust(None, step) == (VerdictKind.INTRUSION, "storage:WW", "storage:WW/level_m")
