"""The sent log's window must follow the order periods were logged in, not the wall clock's readings.

Review of session 40's sent log (`sectors.sent_log`). `SentLog.recent` resends the periods whose
``stamped`` (``time.time()`` when the period was taken) lies within `RESEND_WINDOW_S` of the
largest ``stamped`` in the log, and `SentLog.append` deletes rows more than the window before the
new one's. When the wall clock is stepped (NTP correcting a drifted clock, a VM resumed, a host
that boots before its clock is set), both go wrong although the periods were logged a second
apart: stepped back, the periods logged since are never in the resend (the old, larger stamps
win); stepped forward, the periods logged just before the step are deleted at the next append.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sectors.sent_log import SentLog

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _period(i: int) -> datetime:
    return T0 + timedelta(seconds=30 * i)


def test_periods_logged_after_the_clock_stepped_back_are_resent(tmp_path: Path) -> None:
    with SentLog(tmp_path / "t.sent.sqlite") as log:  # the production window
        for i in range(5):  # one period a wall second
            log.append(_period(i), 10_000.0 + i, [f"[{i}]".encode()])
        for i in (5, 6):  # the clock is stepped back a minute; the twin logs on
            log.append(_period(i), 9_945.0 + i, [f"[{i}]".encode()])
        resent = [p.now for p in log.recent()]
    assert resent[-2:] == [_period(5), _period(6)], f"the resend after the step holds {resent}"


def test_periods_logged_just_before_the_clock_stepped_forward_are_resent(tmp_path: Path) -> None:
    with SentLog(tmp_path / "t.sent.sqlite") as log:
        for i in range(5):
            log.append(_period(i), 10_000.0 + i, [f"[{i}]".encode()])
        log.append(_period(5), 13_605.0, [b"[5]"])  # one second later, but the clock was stepped an hour on
        resent = [p.now for p in log.recent()]
    assert _period(4) in resent, f"the period logged a second before is gone from the log: {resent}"
