"""The supervisor's restart back-off grows for a component that keeps crashing, and starts again at its
first step for one that had run healthy a while (found by the crash campaign, docs/crash-campaign.md)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from core.config import load_settings
from qeaims.supervisor import RESTART_BACKOFF_S, STABLE_S, Component, Supervisor


class _Crashing(Supervisor):
    def _command(self, component: Component) -> list[str]:
        return [sys.executable, "-c", "raise SystemExit(3)"]


def _crash_once(sup: _Crashing) -> float:
    """Start the child (as the restart due now would), let it die, return the back-off the supervisor chose."""
    state = sup.states["x"]
    state._next_start = 0.0
    assert sup.check() and state.state == "starting"
    sup.children["x"].wait(30)
    return _delay(sup)


def _delay(sup: _Crashing) -> float:
    state = sup.states["x"]
    assert sup.check() and state.state == "restarting" and state.last_exit == 3
    return round(state._next_start - time.monotonic())


def test_backoff_grows_while_crashing_and_restarts_from_its_first_step_after_a_healthy_run(tmp_path: Path) -> None:
    sup = _Crashing(load_settings(home=tmp_path), [Component("x", (), 0)])
    sup._start(sup.components[0])
    sup.children["x"].wait(30)
    assert _delay(sup) == RESTART_BACKOFF_S[0]
    assert [_crash_once(sup) for _ in range(3)] == list(RESTART_BACKOFF_S[1:4])  # crash loop: 2, 5, 10 s
    state = sup.states["x"]
    state._next_start = 0.0
    assert sup.check()
    state._started -= STABLE_S + 1  # it ran healthy for longer than STABLE_S before this crash
    sup.children["x"].wait(30)
    assert _delay(sup) == RESTART_BACKOFF_S[0]
    assert state.restarts == 5  # the count the status shows is every restart
    assert _crash_once(sup) == RESTART_BACKOFF_S[1]
    sup.stop_all()
