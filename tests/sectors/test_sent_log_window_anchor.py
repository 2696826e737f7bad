"""The resend window must reach back to what the killed broker lost, not only to the last period logged.

Review of session 40's sent log (`sectors.sent_log`). `SentLog.recent` resends the periods stamped
within `RESEND_WINDOW_S` (15 s) of the *last period logged*, and `SentLog.append` deletes what is
older than that. But a twin whose broker is away when its next period is due logs that period
(written ahead), fails to publish it and exits (`IngestError`); restarted, it resends the window
counted back from that period, not from when the broker went down. A twin whose report period is
longer than the window in wall seconds (``qeaims twin`` runs at speed 1 by default: banking,
healthcare, sewage, transportation and water report every 30 s), whose broker was killed a few
seconds after a period and is still away at the next one, never resends the period the broker
lost: by then `append` has deleted it too. This test uses a 3 s window (the rule is the same) and makes the
twin's next period come just past it, while the broker is down.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from bus.errors import IngestError
from bus.mosquitto import MosquittoBroker, mosquitto_executable
from core.messages import Reading, Sector
from sectors.publish import TwinPublisher
from sectors.runner import open_twin
from sectors.sent_log import SentLog
from tests.conftest import free_port
from tests.oracles.test_ingest_mqtt import wait_for
from tests.sectors.test_sent_log_broker_kill import PERIODS, _all_periods, _broker_with_saved_session, _key

WINDOW_S = 3.0  # the production window is 15 s (`RESEND_WINDOW_S`); the rule is the same, the test shorter

pytestmark = pytest.mark.skipif(mosquitto_executable() is None, reason="Mosquitto is not installed (make system)")


def _last_step(path: Path) -> int:
    with sqlite3.connect(path) as db:  # a reader of its own: the twin's thread writes through its connection
        return int(db.execute("SELECT COALESCE(MAX(step), 0) FROM periods").fetchone()[0])


@pytest.mark.slow  # 15 s of a real broker's outage; the rule is also `test_twin_sent_log.py`'s first test
def test_a_period_lost_by_the_broker_is_resent_after_the_twin_logged_the_next_one(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "broker"
    broker, sink, oracle = _broker_with_saved_session(port, data_dir)
    sent: list[Reading] = []
    log_path = tmp_path / "banking.sent.sqlite"
    try:
        with SentLog(log_path, window_s=WINDOW_S) as log, open_twin(Sector.BANKING) as runner, \
                TwinPublisher(runner, port=port, speed=1e6, sent_log=log) as twin:
            twin.run(threading.Event(), steps=PERIODS, on_step=sent.extend)
            wait_for(lambda: len(sink) >= 100 * 18, timeout_s=10)  # the oracle's window is full, the rest queued
            last_stamped = log.recent()[-1].stamped
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGKILL)  # within its autosave interval: the queued periods are gone
            wait_for(lambda: not broker.alive, timeout_s=10)
            # the broker is still away when the twin's next period is due (one period later in wall time):
            # the period is logged, its publish fails, and the twin process exits (`qeaims twin` dies on it)
            time.sleep(max(0.0, last_stamped + WINDOW_S + 0.5 - time.time()))
            with pytest.raises(IngestError):
                twin.run(threading.Event(), steps=PERIODS + 1)
            assert _last_step(log_path) == PERIODS + 1
        broker = MosquittoBroker(port=port, data_dir=data_dir).start()
        with SentLog(log_path, window_s=WINDOW_S) as log:  # the twin restarted as `qeaims twin` resumes it
            resume = log.last_clock()
            with open_twin(Sector.BANKING, start=resume) as runner, \
                    TwinPublisher(runner, port=port, sent_log=log) as again:
                resent = again.resend_recent("restart")
        expected = {_key(r) for r in sent}
        missing = expected - _all_periods(sink, expected)
        assert not missing, (f"{len(missing)} of {len(expected)} readings never reached the oracle "
                             f"(the restarted twin resent {resent} periods)")
    finally:
        oracle.stop()
        broker.stop()
