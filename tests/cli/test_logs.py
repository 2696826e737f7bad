"""Structured log lines carry their wall-clock time, so the logs of a city's processes line up."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from core.logs import log_line, setup_logging


@pytest.fixture
def qeaims_logger() -> Iterator[None]:
    """`setup_logging` rewires the ``qeaims`` logger for the process: put it back for the other tests."""
    root = logging.getLogger("qeaims")
    saved = (root.handlers[:], root.level, root.propagate)
    yield
    root.handlers[:], root.propagate = saved[0], saved[2]
    root.setLevel(saved[1])


def test_every_line_is_one_json_object_stamped_with_its_time(capsys: pytest.CaptureFixture[str],
                                                              qeaims_logger: None) -> None:
    setup_logging()
    before = datetime.now(UTC)
    log_line("qeaims.test", "verdict", asset="pump:10", score=3.5)
    log_line("qeaims.test", "empty")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["verdict", "empty"]
    assert lines[0]["asset"] == "pump:10" and lines[0]["score"] == 3.5
    stamped = datetime.fromisoformat(lines[0]["ts"])
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC)
    assert next(iter(lines[0])) == "ts"  # first: a reader sorts merged logs on it
