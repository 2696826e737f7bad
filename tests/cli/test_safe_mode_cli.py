"""`qeaims intel list` shows a safe mode the controller decided, and `qeaims intel lift` ends it for good: the
controller does not decide it again on the same evidence. Its own chain: it leaves indicators in force."""

from __future__ import annotations

import json

from tests.cli.test_vault_cli import _error, _ok
from tests.conftest import run_cli
from tests.controller.test_cyber import _controller
from tests.controller.test_safe_mode import _attack, _safe_modes


def test_the_control_room_lifts_a_safe_mode_and_it_stays_lifted(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    env = chain.env
    for n, device in enumerate(("pump-a", "pump-b", "valve-c")):
        _attack(chain, "water", device, f"10.36.0.{n + 1}")
    ctl = _controller(chain)
    try:
        ctl.run_once()
        [applied] = _safe_modes(chain)
        listed = json.loads(_ok(run_cli(["intel", "list", "--json"], env)))
        assert [(m["id"], m["type"], m["sector"]) for m in listed["countermeasures"]
                if m["type"] == "safe-mode"] == [(applied["id"], "safe-mode", "water")]
        assert "say why" in _error(run_cli(["intel", "lift", applied["id"]], env))
        _ok(run_cli(["intel", "lift", applied["id"], "--reason", "SOC: campaign contained, PLCs re-imaged"], env))
        ctl.run_once()
        ctl.run_once()
    finally:
        ctl.close()
    assert [p["state"] for p in _safe_modes(chain)] == ["applied", "lifted"]
    listed = json.loads(_ok(run_cli(["intel", "list", "--json"], env)))
    assert not [m for m in listed["countermeasures"] if m["type"] == "safe-mode"]
    assert "is in force" in _error(run_cli(["intel", "lift", applied["id"], "--reason", "again"], env))
