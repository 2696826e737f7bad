"""`qeaims.city_latency`: the worst oracle of each sector, from the hosts' latest ``ingest-latency`` lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import Settings
from qeaims.city_latency import ingest_latency, keeping_up

pytestmark = pytest.mark.unit


def line(sector: str, index: int, total_p95: float, ts: str = "2026-12-05T02:00:00Z") -> str:
    hop = {"p50": total_p95 / 2, "p95": total_p95, "max": total_p95 * 1.5}
    return json.dumps({"event": "ingest-latency", "ts": ts, "sector": sector, "index": index, "batches": 10,
                       "publish": hop, "broker": hop, "store": hop, "total": hop})


def test_the_latest_line_of_each_oracle_and_the_worst_oracle_per_sector(tmp_path: Path) -> None:
    logs = tmp_path / "run" / "logs"
    logs.mkdir(parents=True)
    (logs / "oracles-electricity.log").write_text("\n".join([
        line("electricity", 1, 40.0),  # an old line: the oracle has caught up since
        "not json at all", '{"event": "ingest-latency", "sector": "electricity"}',  # torn and partial lines
        line("electricity", 1, 0.3), line("electricity", 2, 0.8)]) + "\n")
    (logs / "oracles-water.log").write_text(line("water", 1, 1.7) + "\n")
    rows = ingest_latency(Settings(home=tmp_path))
    assert rows["electricity"]["oracles"] == 2 and rows["electricity"]["total_p95_s"] == 0.8
    assert rows["electricity"]["batches"] == 20
    assert keeping_up(rows) == {"electricity": True, "water": False}


def test_no_logs_no_rows(tmp_path: Path) -> None:
    assert ingest_latency(Settings(home=tmp_path)) == {}
    assert keeping_up({"banking": {"oracles": 1}}) == {"banking": False}  # no figure is not keeping up
