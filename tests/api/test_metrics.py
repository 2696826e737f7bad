"""`GET /metrics` over a real chain: the families count what was recorded, follow new blocks, time the
API's requests by route, and are not for anyone without an auditor's or a governor's token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from chain.recorder import canonical_payload
from core.kinds import kind_by_name
from keys.ids import to_bytes32
from tests.api.conftest import Tokens, make_tokens
from tests.conftest import Chain
from tests.support import isolate_by_quorum, oracle, recorder


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _record(chain: Chain, sector: str, kind: str, body: dict[str, object], times: int = 1) -> None:
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, sector, 1))
    try:
        for _ in range(times):
            rec.record(kind_by_name(kind), to_bytes32("asset-1"), canonical_payload(body))
    finally:
        rec.outbox.close()


def test_the_scrape_counts_what_the_chain_holds(fresh_chain: Chain) -> None:
    chain = fresh_chain
    observed = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    _record(chain, "water", "anomaly", {"verdict": "anomaly", "observed_at": observed}, times=3)
    _record(chain, "water", "telemetry-root", {"root": "0x00"}, times=2)
    _record(chain, "electricity", "fault", {"verdict": "fault"})
    isolate_by_quorum(chain, "electricity", "feeder-1", "feeder-1")  # one more fault, three votes, one isolation
    app = create_app(chain.settings, follow=False)
    tokens: Tokens = make_tokens(chain.settings.home / "api")
    app.state.ctx.sync()
    client = TestClient(app)
    assert client.get("/api/v1/whoami", headers=tokens.header(tokens.auditor)).status_code == 200

    scrape = client.get("/metrics", headers=tokens.header(tokens.auditor))
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    got = _samples(scrape.text)
    assert got[("qeaims_events_total", (("kind", "anomaly"), ("sector", "water")))] == 3
    assert got[("qeaims_events_total", (("kind", "telemetry-root"), ("sector", "water")))] == 2
    assert got[("qeaims_events_total", (("kind", "fault"), ("sector", "electricity")))] == 2
    assert sum(v for (name, _), v in got.items() if name == "qeaims_events_total") == 7
    assert got[("qeaims_verdicts_total", (("sector", "water"), ("verdict", "anomaly")))] == 3
    assert got[("qeaims_verdicts_total", (("sector", "electricity"), ("verdict", "fault")))] == 2
    assert not any(name == "qeaims_verdicts_total" and ("verdict", "telemetry-root") in labels
                   for name, labels in got)
    assert got[("qeaims_isolations_total", (("sector", "electricity"),))] == 1
    assert got[("qeaims_votes_total", (("action", "isolate"),))] == 3
    assert got[("qeaims_chain_height", ())] == int(chain.client.rpc.call("eth_blockNumber"), 16)
    assert 28 <= got[("qeaims_oracle_lag_seconds", (("sector", "water"), ("stat", "last")))] <= 34
    assert got[("qeaims_stream_clients", ())] == 0
    whoami = (("method", "GET"), ("route", "/api/v1/whoami"), ("status", "2xx"))
    assert got[("qeaims_http_request_duration_seconds_count", whoami)] == 1

    _record(chain, "water", "anomaly", {"verdict": "anomaly", "observed_at": observed})
    app.state.ctx.sync()  # a new block: the cached figures are computed again
    again = _samples(client.get("/metrics", headers=tokens.header(tokens.governor)).text)
    assert again[("qeaims_events_total", (("kind", "anomaly"), ("sector", "water")))] == 4
    assert again[("qeaims_http_request_duration_seconds_count", (("method", "GET"), ("route", "/metrics"),
                                                                 ("status", "2xx")))] >= 1


def test_metrics_need_an_auditor_or_a_governor_and_stay_out_of_the_schema(
        offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=tokens.header(tokens.operator_water)).status_code == 403
    empty = client.get("/metrics", headers=tokens.header(tokens.auditor))
    assert empty.status_code == 200 and "qeaims_stream_clients 0.0" in empty.text
    assert "qeaims_events_total" not in empty.text  # no index yet: no chain figures, and no error
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]
