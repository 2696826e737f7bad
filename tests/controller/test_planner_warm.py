"""`TwinPlanner.warm` opens each sector's model once at the controller's start, and never stops it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Self

import pytest

from controller import planning
from controller.planning import TwinPlanner
from core.messages import Sector


def test_warm_opens_what_it_can_and_skips_what_it_cannot(monkeypatch: pytest.MonkeyPatch) -> None:
    real = planning.open_twin  # type: ignore[attr-defined]

    def flaky(sector: Any, **kw: Any) -> Any:
        if Sector(sector) is Sector.WATER:
            raise ImportError("wntr is not installed here")  # not a QeaimsError: warming must still go on
        return real(sector, **kw)

    monkeypatch.setattr(planning, "open_twin", flaky)
    took = TwinPlanner().warm([Sector.WATER, Sector.BANKING, Sector.SEWAGE])
    assert set(took) == {"banking", "sewage"} and all(t >= 0.0 for t in took.values())


def _no_feeder_graph(self: TwinPlanner) -> Any:
    raise ImportError("pandapower is not installed here")


def test_warm_goes_on_when_the_feeder_graph_cannot_be_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TwinPlanner, "_feeder_graph", property(_no_feeder_graph))
    took = TwinPlanner(field=object()).warm([Sector.BANKING])  # type: ignore[arg-type]
    assert set(took) == {"banking"}


def _fake_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stop: threading.Event) -> list[str]:
    """`run_controller` with no chain, broker or files: what happens is appended to the list returned."""
    from controller import process

    seen: list[str] = []

    class FakeController:
        link_watch = None

        def __init__(self, **_: Any) -> None:
            self.isolations: dict[int, Any] = {}

        def run_once(self) -> None:
            seen.append("run_once")
            stop.set()

        def close(self) -> None:
            seen.append("close")

    class FakeCommander:
        def __init__(self, **_: Any) -> None:
            pass

        def __enter__(self) -> Self:
            return self

        def __exit__(self, *_: object) -> None:
            seen.append("commander-closed")

    class FakeWatch:
        def __init__(self, **_: Any) -> None:
            pass

        def start(self) -> Self:
            return self

        def close(self) -> None:
            seen.append("watch-closed")

    keystore = tmp_path / "controller.json"
    keystore.write_text("{}")
    monkeypatch.setattr(process, "controller_keystore", lambda _settings: keystore)
    monkeypatch.setattr(process, "load_keystore", lambda *_: SimpleNamespace(address="0x" + "c0" * 20))
    monkeypatch.setattr(process, "connect", lambda _settings: (None, None))
    monkeypatch.setattr(process, "Commander", FakeCommander)
    monkeypatch.setattr(process, "Controller", FakeController)
    monkeypatch.setattr(process, "LinkWatch", FakeWatch)
    return seen


def test_a_planner_that_cannot_warm_neither_stops_the_controller_nor_skips_its_cleanup(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`run_controller` warms the planner before its loop; a failure there used to end the process
    before the loop's try/finally, so the controller never ran and its index and outbox stayed open."""
    from controller import process

    stop = threading.Event()
    seen = _fake_process(monkeypatch, tmp_path, stop)
    monkeypatch.setattr(TwinPlanner, "_feeder_graph", property(_no_feeder_graph))
    monkeypatch.setattr(TwinPlanner, "__call__", lambda *_: None)
    monkeypatch.setattr(planning, "open_twin", lambda *_, **__: nullcontext())

    process.run_controller(SimpleNamespace(passphrase="x"), TwinPlanner(field=object()),  # type: ignore[arg-type]
                           stop=stop)
    assert seen == ["run_once", "close", "commander-closed"]

    class Broken(TwinPlanner):
        def warm(self, sectors: Iterable[Sector]) -> dict[str, float]:
            raise RuntimeError("a planner of another make")

    seen.clear()
    stop.clear()
    process.run_controller(SimpleNamespace(passphrase="x"), Broken(), stop=stop)  # type: ignore[arg-type]
    assert seen == ["run_once", "close", "commander-closed"]


def test_whatever_ends_the_start_still_closes_the_controller_and_the_link_watch(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from controller import process

    stop = threading.Event()
    seen = _fake_process(monkeypatch, tmp_path, stop)
    links = SimpleNamespace(plan=None, directory=None, kme=None)

    def refuse(_: object) -> None:
        raise RuntimeError("the caller's on_ready failed")

    with pytest.raises(RuntimeError):  # the caller's own failure is its to see, after the cleanup
        process.run_controller(SimpleNamespace(passphrase="x"), lambda *_: None, stop=stop,  # type: ignore[arg-type]
                               on_ready=refuse, links=links)  # type: ignore[arg-type]
    assert seen == ["close", "commander-closed", "watch-closed"]

    def no_files(**_: Any) -> None:
        raise OSError("the controller's outbox cannot open")

    seen.clear()
    monkeypatch.setattr(process, "Controller", no_files)
    with pytest.raises(OSError):
        process.run_controller(SimpleNamespace(passphrase="x"), lambda *_: None, stop=stop,  # type: ignore[arg-type]
                               links=links)  # type: ignore[arg-type]
    assert seen == ["commander-closed", "watch-closed"]
