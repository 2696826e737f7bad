"""controller._plan_workers: a slow plan in one sector holds up no other sector, and each plan is made once."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from controller._plan_workers import PlanResult, PlanWorkers
from controller.plans import ResponsePlan
from core.messages import Sector


def _until(ask: Any, timeout_s: float = 10.0) -> PlanResult:
    deadline = time.monotonic() + timeout_s
    while (done := ask()) is None:
        assert time.monotonic() < deadline, "the plan never came"
        time.sleep(0.01)
    return done  # type: ignore[no-any-return]


def test_a_slow_sector_plan_does_not_hold_up_another_sector() -> None:
    release = threading.Event()
    calls: list[tuple[Sector, str]] = []

    def planner(sector: Sector, purpose: str, asset: str, sent: Sequence[dict[str, Any]]) -> ResponsePlan:
        calls.append((sector, asset))
        if sector is Sector.TRANSPORTATION:
            assert release.wait(10), "the slow plan was never released"
        return ResponsePlan(sector, asset, purpose, ())

    workers = PlanWorkers(planner)
    try:
        assert workers.ask((1, "plan"), Sector.TRANSPORTATION, "isolate", "link:n11-n12") is None
        # the hospital's plan comes while the traffic model is still busy
        done = _until(lambda: workers.ask((2, "plan"), Sector.HEALTHCARE, "isolate", "hospital-2"))
        assert done.error is None and done.plan is not None and done.plan.target == "hospital-2"
        assert workers.busy() == [(1, "plan")]
        # asked again while it runs, the same job answers: the slow plan is not started twice
        assert workers.ask((1, "plan"), Sector.TRANSPORTATION, "isolate", "link:n11-n12") is None
        release.set()
        slow = _until(lambda: workers.ask((1, "plan"), Sector.TRANSPORTATION, "isolate", "link:n11-n12"))
        assert slow.plan is not None and slow.plan.target == "link:n11-n12"
        assert calls.count((Sector.TRANSPORTATION, "link:n11-n12")) == 1 and workers.busy() == []
    finally:
        release.set()
        workers.close()


def test_one_sector_plans_one_at_a_time_in_the_order_asked() -> None:
    running, order = [0], []
    peak = [0]
    lock = threading.Lock()

    def planner(sector: Sector, purpose: str, asset: str, sent: Sequence[dict[str, Any]]) -> ResponsePlan:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)  # a model being solved: a second plan of this sector must not run beside it
        with lock:
            running[0] -= 1
            order.append(asset)
        return ResponsePlan(sector, asset, purpose, ())

    workers = PlanWorkers(planner)
    try:
        for n in range(3):
            assert workers.ask((n, "plan"), Sector.SEWAGE, "isolate", f"pump:P{n}") is None
        for n in range(3):
            _until(lambda n=n: workers.ask((n, "plan"), Sector.SEWAGE, "isolate", f"pump:P{n}"))
        assert peak[0] == 1 and order == ["pump:P0", "pump:P1", "pump:P2"]
    finally:
        workers.close()


@pytest.mark.parametrize("inline", [False, True])
def test_a_planner_error_is_handed_back_not_raised_in_the_loop(inline: bool) -> None:
    def planner(sector: Sector, purpose: str, asset: str, sent: Sequence[dict[str, Any]]) -> ResponsePlan:
        raise IndexError("list index out of range")

    workers = PlanWorkers(planner, inline=inline)
    try:
        done = _until(lambda: workers.ask((7, "restore-plan"), Sector.WATER, "restore", "pipe:159"))
        assert done.plan is None and isinstance(done.error, IndexError)
    finally:
        workers.close()


def test_a_stopped_controller_does_not_wait_for_the_plan_it_was_making() -> None:
    # review (review-ctl): `close` returned at once, but the interpreter joins a ThreadPoolExecutor's
    # threads at exit: a controller stopped during the storm day's 45-second traffic plan lingered
    # until the plan was done, for a result nobody would read (its step is planned again on restart)
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import time\n"
        "from controller._plan_workers import PlanWorkers\n"
        "from core.messages import Sector\n"
        "def planner(sector, purpose, asset, sent):\n"
        "    time.sleep(30)\n"
        "workers = PlanWorkers(planner)\n"
        "workers.ask((1, 'plan'), Sector.TRANSPORTATION, 'isolate', 'link:n11-n12')\n"
        "workers.ask((2, 'plan'), Sector.TRANSPORTATION, 'isolate', 'link:n12-n13')\n"
        "time.sleep(0.3)\n"
        "workers.close()\n"
    )
    root = Path(__file__).resolve().parents[2]
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], cwd=root, env={"PYTHONPATH": str(root)}, check=True, timeout=60)
    assert time.monotonic() - started < 15, "the process waited for the running plan"
