"""A sent log damaged past its first rows is one clear error, like a log that is not a database at all.

Review of session 40's sent log (`sectors.sent_log`). `SentLog` turns a damaged file into the
`ConfigError` "move it aside" when the damage shows while it opens, and `recent` does for rows it
cannot decode, but not for SQLite's own "database disk image is malformed" from a page that only
`recent` reads (here: a batch's overflow page whose link points past the end of the file). Resumed,
``qeaims twin`` dies on the restart's resend with a `sqlite3.DatabaseError` traceback (the CLI says
SQLite's operational errors in one line and keeps the traceback for everything else), and the
supervisor restarts it into the same traceback.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bus.mosquitto import MosquittoBroker, mosquitto_executable
from sectors.sent_log import SentLog, sent_log_path
from tests.conftest import free_port, run_cli

pytestmark = pytest.mark.skipif(mosquitto_executable() is None, reason="Mosquitto is not installed (make system)")


def _damaged_log(path: Path) -> None:
    """One logged period whose batch spills over several pages, then one of those pages' links broken."""
    with SentLog(path) as log:
        log.append(datetime(2025, 1, 1, tzinfo=UTC), 1000.0, [b"[" + b"7" * 20_000 + b"]"])
    data = bytearray(path.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    spill = [i for i in range(len(data) // size) if data[i * size + 4:i * size + 64] == b"7" * 60]
    assert len(spill) >= 2, "the batch did not spill over pages"
    data[spill[0] * size:spill[0] * size + 4] = (len(data) // size + 100).to_bytes(4, "big")  # past the end
    path.write_bytes(bytes(data))


def test_a_resumed_twin_with_a_damaged_sent_log_says_so_in_one_line(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    (home / "twins").mkdir(parents=True)
    (home / "twins" / "banking.json").write_text(json.dumps({"now": "2025-01-01T00:00:00+00:00"}))
    _damaged_log(sent_log_path(home, "banking"))
    env = {**os.environ, "QEAIMS_HOME": str(home), "COLUMNS": "200"}
    with MosquittoBroker(port=port, data_dir=tmp_path / "broker"):
        run = run_cli(["twin", "--sector", "banking", "--no-commands", "--speed", "100000", "--steps", "1",
                       "--mqtt-port", str(port)], env)
    assert "Traceback" not in run.stderr, run.stderr[-600:]
    assert run.returncode == 2 and "error: the twin's sent log" in run.stderr and "move it aside" in run.stderr
