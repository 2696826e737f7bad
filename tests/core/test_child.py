"""core.child: a child's output lands in its log, and the wait tells ready, exited and timed out apart."""

from __future__ import annotations

import sys
from pathlib import Path

from core.child import Start, last_log_lines, spawn_logged, wait_ready


def test_a_child_that_exits_is_told_from_one_that_never_gets_ready(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text("an earlier run\n")
    quits = spawn_logged([sys.executable, "-c", "import sys; print('starting'); sys.exit('port taken')"], log)
    assert wait_ready(quits, lambda: False, timeout_s=20.0, interval_s=0.02) is Start.EXITED
    assert last_log_lines(log, 3) == ["an earlier run", "starting", "port taken"]  # appended, stderr too

    sleeps = spawn_logged([sys.executable, "-c", "import time; time.sleep(30)"], log)
    try:
        assert wait_ready(sleeps, lambda: False, timeout_s=0.2, interval_s=0.02) is Start.TIMED_OUT
        calls: list[int] = []

        def third_time() -> bool:
            calls.append(1)
            return len(calls) == 3

        assert wait_ready(sleeps, third_time, timeout_s=20.0, interval_s=0.01) is Start.READY
    finally:
        sleeps.kill()
        sleeps.wait()
    assert last_log_lines(tmp_path / "missing.log") == []
