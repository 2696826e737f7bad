"""Review s40b: a sent log written by the previous release (no ``mono`` / ``published`` columns).

`sectors.sent_log` added two columns with ``CREATE TABLE IF NOT EXISTS``, which leaves an existing
table as it is: a twin resumed on a data directory from before then is told its log is *damaged*
and to move it aside, which throws away exactly the periods the log exists to resend.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sectors.sent_log import SentLog

T0 = datetime(2025, 1, 1, tzinfo=UTC)

_PREVIOUS_SCHEMA = """
CREATE TABLE IF NOT EXISTS periods (
    step     INTEGER PRIMARY KEY,
    now      TEXT NOT NULL,
    stamped  REAL NOT NULL,
    payloads BLOB NOT NULL
);
"""  # sectors/sent_log.py as of 6e2ffbe


def test_a_log_from_the_previous_release_is_resent_and_appended_to_not_called_damaged(tmp_path: Path) -> None:
    path = tmp_path / "banking.sent.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_PREVIOUS_SCHEMA)
    db.execute("INSERT INTO periods(step, now, stamped, payloads) VALUES (1, ?, 5000.0, ?)",
               (T0.isoformat(), json.dumps(["[1]"]).encode()))
    db.commit()
    db.close()
    with SentLog(path) as log:
        assert [p.payloads for p in log.recent()] == [(b"[1]",)]  # never known to be acknowledged: resent
        assert log.append(T0, 5001.0, [b"[2]"]) == 2
