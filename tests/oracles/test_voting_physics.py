"""A physics rule's verdict rests on every instrument it read; a model's on the sensor it names first.

`oracles.node.voting` makes a fault vote moot when its evidence rests on a quarantined sensor.
For a physics verdict that is any instrument it names: a wet-well level found falsified (and
quarantined) must not go on failing a healthy pump through the rule once the step that gave it
away has left the oracle's window. A model's verdict keeps its old reading, so that one
quarantined sensor does not blind a sector to real faults in the rest.
"""

from __future__ import annotations

from oracles.node.voting import _quarantined_evidence
from oracles.sector_model import PHYSICS_NOTE


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
