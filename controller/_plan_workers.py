"""Plans made off the controller's loop, one worker thread per sector (part of `controller.node`).

A plan is worked out on a model of the sector's network (`controller.planning.TwinPlanner`): a
line fault's FLISR search takes a fraction of a second, but the transport restore plan simulates
five signal timings five minutes ahead, which under a storm day's load took 45 wall seconds. Made
inline, that plan held up every other sector's response behind it: the hospital surge that
arrived meanwhile was answered 302 field seconds after its onset, of which 250 were spent waiting
for the traffic model. Each sector now plans on its own worker thread, and the loop goes on with
whatever isolation is ready while a plan is being made.

One worker per sector, not a pool: two plans of the same sector never run at once (a sector's
model libraries, pyswmm's SWMM engine among them, are not made for concurrent runs in one
process), and the order of one sector's plans is the order they were asked for. Threads, not
processes: the models are already open and warm in this process (`TwinPlanner.warm`), and the
loop only needs not to wait; the plans still share the interpreter, so the slow one slows the
others only by its share of the processor, not by its whole length.

A job is keyed by (proposal, step): asked again while it runs, the same job answers; once its
result has been taken, the key is free. A job still running when the controller stops is dropped
(its step was never recorded, so a restarted controller plans it again), and the process does not
wait for it: the workers are daemon threads. A `ThreadPoolExecutor`'s are joined at the
interpreter's exit, and a controller stopped during the storm day's 45-second traffic plan lingered
until that plan was done, for a result nobody would read.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from controller.plans import ResponsePlan
from core.messages import Sector

__all__ = ["PlanResult", "PlanWorkers"]

# (sector, purpose, asset, commands already sent) → plan: `controller._controller_state.Planner`,
# spelled out here because that module holds a `PlanWorkers` (no import either way round)
_Planner = Callable[[Sector, str, str, Sequence[dict[str, Any]]], "ResponsePlan | None"]


@dataclass(frozen=True)
class PlanResult:
    """A finished plan: the plan (None: nothing to do for this asset), or the error the planner raised."""

    plan: ResponsePlan | None
    error: BaseException | None = None


class _Worker:
    """One daemon thread that makes a sector's plans in the order they were asked for."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((future, fn, args))
        return future

    def stop(self) -> None:
        """The thread ends after the job it is running (the jobs behind it were cancelled)."""
        self._queue.put(None)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue  # cancelled by `PlanWorkers.close` before it started
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the asker, as an executor does
                future.set_exception(exc)


class PlanWorkers:
    """`ask` a plan; it answers None until the sector's worker has made it, then the `PlanResult` once."""

    def __init__(self, planner: _Planner, *, inline: bool = False) -> None:
        """`inline`: plan in the caller's thread and answer at once (a caller that steps the controller
        itself, with no loop to come back: tests of single steps)."""
        self._planner, self._inline = planner, inline
        self._workers: dict[Sector, _Worker] = {}
        self._jobs: dict[tuple[int, str], Future[ResponsePlan | None]] = {}

    def ask(self, key: tuple[int, str], sector: Sector, purpose: str, asset: str,
            sent: Sequence[dict[str, Any]] = ()) -> PlanResult | None:
        """The plan for `key`, started now if it is not being made yet; None while it is being made."""
        if self._inline:
            try:
                return PlanResult(self._planner(sector, purpose, asset, tuple(sent)))
            except Exception as exc:  # noqa: BLE001 - handed to the caller as a worker's error would be
                return PlanResult(None, exc)
        job = self._jobs.get(key)
        if job is None:
            worker = self._workers.get(sector)
            if worker is None:
                worker = self._workers[sector] = _Worker(f"plan-{sector.value}")
            job = self._jobs[key] = worker.submit(self._planner, sector, purpose, asset, tuple(sent))
        if not job.done():
            return None
        del self._jobs[key]
        error = job.exception()
        return PlanResult(None, error) if error is not None else PlanResult(job.result())

    def busy(self) -> list[tuple[int, str]]:
        """The jobs not finished yet (proposal, step)."""
        return [key for key, job in self._jobs.items() if not job.done()]

    def close(self) -> None:
        """Drop the jobs not started and stop the workers without waiting for the one running."""
        for job in self._jobs.values():
            job.cancel()  # only a job not started yet can be cancelled: the running one ends on its own
        for worker in self._workers.values():
            worker.stop()
        self._workers.clear()
        self._jobs.clear()
