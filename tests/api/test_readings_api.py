"""`/readings/{sector}/{asset}`: readings from a real telemetry store under the API's home, scores from
verdict events recorded on the session chain, and who may read them."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from core.messages import Reading, Sector
from oracles.merkle import timestamp_ms
from oracles.telemetry import TelemetryStore, telemetry_path
from tests.api._regulator import RegApi, build
from tests.conftest import Chain
from tests.support import oracle

pytestmark = pytest.mark.chain

T0 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
ASSET, OTHER = "junction:10", "junction:15"


@dataclass
class Setup:
    api: RegApi
    oracle: str  # checksummed: the water oracle whose store the API reads
    mine: float  # junction:10's anomaly score (random, so no other test's event can match it)
    theirs: float  # junction:15's
    store_digest: str


def _readings() -> list[Reading]:
    """40 readings: junction:10's pressure and flow alternating, every fourth one junction:15's."""
    out = []
    for i in range(40):
        asset = OTHER if i % 4 == 3 else ASSET
        sensor = "pressure" if i % 2 == 0 else "flow"
        out.append(Reading(sector=Sector.WATER, asset_id=asset, sensor_id=sensor, quantity=f"{sensor}_x",
                           unit="u", value=float(i), timestamp=T0 + timedelta(seconds=i)))
    return out


@pytest.fixture(scope="module")
def setup(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    api = build(chain, tmp_path_factory.mktemp("readings-api"))
    ident = oracle(chain.settings, "water", 4)
    path = telemetry_path(api.settings.home, ident.address)
    store = TelemetryStore(path, ident.address, batch_size=16)
    try:
        store.add_many(_readings())
    finally:
        store.close()
    mine, theirs = 5 + secrets.randbelow(10**6) / 10**6, 20 + secrets.randbelow(10**6) / 10**6
    api.record("water", [
        ("anomaly", "main-1", {"asset": ASSET, "verdict": "anomaly", "score": mine, "threshold": 4.5,
                               "sensors": ["pressure"], "observed_at": T0.isoformat()}),
        ("anomaly", "main-1", {"asset": OTHER, "verdict": "anomaly", "score": theirs, "threshold": 4.5,
                               "sensors": ["flow"], "observed_at": T0.isoformat()})])
    yield Setup(api, ident.address, mine, theirs, hashlib.sha256(path.read_bytes()).hexdigest())
    api.client.close()


def test_an_assets_readings_per_sensor_and_its_scores(setup: Setup) -> None:
    api = setup.api
    answer = api.get(f"/readings/water/{ASSET}", api.tokens.operator_water)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["sector"], body["asset"], body["oracle"]) == ("water", ASSET, setup.oracle)
    series = {s["sensor"]: s for s in body["sensors"]}
    assert set(series) == {"pressure", "flow"}
    pressure = [i for i in range(40) if i % 4 != 3 and i % 2 == 0]
    assert series["pressure"]["values"] == [float(i) for i in pressure]
    assert series["pressure"]["time_ms"] == [timestamp_ms(T0 + timedelta(seconds=i)) for i in pressure]
    assert series["flow"]["values"] == [float(i) for i in range(40) if i % 4 == 1]
    assert (series["flow"]["quantity"], series["flow"]["unit"]) == ("flow_x", "u")
    assert series["pressure"]["first"] == "2026-11-26T05:00:00.000Z"
    scores = [s["score"] for s in body["scores"]]
    assert setup.mine in scores and setup.theirs not in scores
    mine = next(s for s in body["scores"] if s["score"] == setup.mine)
    assert (mine["kind"], mine["threshold"], mine["sensors"], mine["oracle"]) == \
        ("anomaly", 4.5, ["pressure"], setup.oracle)
    digest = hashlib.sha256(telemetry_path(api.settings.home, setup.oracle).read_bytes()).hexdigest()
    assert digest == setup.store_digest  # read, never written


def test_one_sensor_and_a_limit(setup: Setup) -> None:
    api = setup.api
    body = api.get(f"/readings/water/{ASSET}", api.tokens.auditor, sensor="flow", limit=3).json()
    [flow] = body["sensors"]
    assert flow["sensor"] == "flow" and flow["values"] == [29.0, 33.0, 37.0]  # the newest three, oldest first
    other = api.get(f"/readings/water/{OTHER}", api.tokens.governor).json()
    assert [s["values"] for s in other["sensors"]] == [[float(i) for i in range(3, 40, 4)]]
    assert setup.theirs in [s["score"] for s in other["scores"]]


def test_a_sector_without_a_store_says_so_with_no_readings(setup: Setup) -> None:
    body = setup.api.get("/readings/electricity/line-3", setup.api.tokens.auditor).json()
    assert (body["oracle"], body["sensors"]) == (None, [])


@pytest.mark.parametrize(("path", "token", "code"), [
    (f"/readings/water/{ASSET}", "operator_electricity", 403),
    (f"/readings/water/{ASSET}", None, 401),
    ("/readings/gas/pipe-1", "auditor", 404),
    ("/readings/water/junction:999999", "auditor", 404),
    ("/readings/water/bus-1", "auditor", 404),
    (f"/readings/water/{ASSET}?limit=0", "auditor", 422),
    (f"/readings/water/{ASSET}?limit=5001", "auditor", 422),
    (f"/readings/water/{ASSET}?limit=many", "auditor", 422),
    ("/readings/water/-bad", "auditor", 422),
])
def test_refusals_are_one_line(setup: Setup, path: str, token: str | None, code: int) -> None:
    tokens = setup.api.tokens
    headers = tokens.header(getattr(tokens, token)) if token is not None else {}
    answer = setup.api.client.get("/api/v1" + path, headers=headers)
    assert answer.status_code == code, answer.text
    assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
