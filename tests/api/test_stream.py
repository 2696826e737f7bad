"""The live stream against a real Anvil and a real uvicorn server: events recorded on the chain reach
an SSE client within a second, a client resumes with Last-Event-ID without a gap or a duplicate, and an
operator hears its own sector only."""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import COOKIE
from api.live.follower import ChainFollower
from api.live.hub import QUEUE_SIZE, Audience, Hub
from api.live.messages import Message
from api.routers import stream as stream_router
from chain.node import stop_anvil
from chain.recorder import canonical_payload
from core.config import load_settings
from core.kinds import kind_by_name
from keys.ids import to_bytes32
from tests.api._live import BlockWatch, SseClient, serving
from tests.api.conftest import Tokens, make_tokens
from tests.conftest import Chain, make_chain
from tests.support import oracle, recorder, wait_until


@dataclass
class Live:
    chain: Chain
    tokens: Tokens
    url: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One chain and one served app for the module (they only add history)."""
    chain = make_chain(tmp_path_factory.mktemp("api-live"))
    try:
        tokens = make_tokens(chain.settings.home / "api")
        app = create_app(chain.settings, follow=True)
        with pytest.MonkeyPatch.context() as patch, serving(app) as url:
            patch.setattr(stream_router, "PING_S", 0.2)  # a closed test client is noticed at once
            wait_until(lambda: app.state.follower.cursor is not None, 20, what="the follower's first sync")
            yield Live(chain, tokens, url)
    finally:
        stop_anvil(chain.settings)


def _record(live: Live, sector: str, kind: str, node: str, body: dict[str, object], index: int = 1) -> int:
    rec = recorder(live.chain.client, live.chain.settings, oracle(live.chain.settings, sector, index))
    try:
        return rec.record(kind_by_name(kind), to_bytes32(node), canonical_payload(body))
    finally:
        rec.outbox.close()


def test_recorded_events_reach_a_client_within_a_second(live: Live) -> None:
    """p95 from the block being mined (first seen at the chain's head) to the client reading it."""
    count = 20
    with BlockWatch(live.chain.client.rpc) as blocks, SseClient(
            live.url, live.tokens.header(live.tokens.auditor), {"topics": "event,alert"}) as client:
        for i in range(count):
            _record(live, "water", "anomaly" if i % 4 == 0 else "telemetry-root", f"pump-{i % 3}", {"i": i})
        received = client.take(count + count // 4, timeout_s=10)
    got = [m for m in received if m.event == "event"]
    alerts = [m for m in received if m.event == "alert"]
    assert [m.data["kind"] for m in got] == ["anomaly" if i % 4 == 0 else "telemetry-root" for i in range(count)]
    assert {m.data["sector"] for m in got} == {"water"}
    assert all(m.id == m.data["cursor"] == f"{m.data['block']}:{m.data['log_index']}" for m in got)
    assert [a.data["payload"] for a in alerts] == [{"i": i} for i in range(0, count, 4)]
    latencies = [m.at - blocks.seen[m.data["block"]] for m in got]
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"stream latency, block mined to SSE client, over {count} events: p50 "
          f"{statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    assert p95 <= 1.0, latencies


def test_alerts_carry_the_payload_and_precede_their_event(live: Live) -> None:
    with SseClient(live.url, live.tokens.header(live.tokens.auditor), {"topics": "event,alert"}) as client:
        _record(live, "water", "fault", "pump-9", {"verdict": "fault", "score": 3.5, "reason": "flow fell"})
        first, second = client.take(2)
    assert (first.event, second.event) == ("alert", "event")
    assert first.id == second.id
    assert first.data["kind"] == "fault" and first.data["payload"]["reason"] == "flow fell"
    assert "payload" not in second.data


def test_a_client_resumes_with_last_event_id(live: Live) -> None:
    header = live.tokens.header(live.tokens.auditor)
    with SseClient(live.url, header, {"topics": "event"}) as first:
        for i in range(5):
            _record(live, "electricity", "telemetry-root", "feeder-1", {"r": i})
        got = first.take(5)
    resume_at = got[1].id
    assert resume_at is not None
    with SseClient(live.url, {**header, "Last-Event-ID": resume_at}, {"topics": "event"}) as second:
        replayed = second.take(3)
        assert [m.id for m in replayed] == [m.id for m in got[2:]]
        assert [m.data for m in replayed] == [m.data for m in got[2:]]
        _record(live, "electricity", "telemetry-root", "feeder-1", {"r": 5})
        (after,) = second.take(1)
        assert after.data["seq"] == got[-1].data["seq"] + 1  # live again, no duplicate of the replay
        assert second.quiet(0.3) == []


def test_a_client_ahead_of_the_index_is_told_it_was_rewound(live: Live) -> None:
    """A Last-Event-ID past the index's end (blocks the chain has since lost): `rewound`, then new events."""
    header = {**live.tokens.header(live.tokens.auditor), "Last-Event-ID": "99999999:0"}
    with SseClient(live.url, header, {"topics": "event"}) as client:
        (rewound,) = client.take(1)
        assert rewound.event == "rewound" and rewound.data["to_block"] < 99999999
        _record(live, "water", "telemetry-root", "tank-3", {"n": 1})
        (event,) = client.take(1)
    assert event.event == "event" and event.data["node"] == "tank-3"


def test_an_operator_hears_its_own_sector_only(live: Live) -> None:
    """The water operator connects as a browser's EventSource does: with the session cookie, no header."""
    cookie = {"Cookie": f"{COOKIE}={live.tokens.operator_water}"}
    with SseClient(live.url, cookie, {"topics": "event,proposal"}) as water, \
            SseClient(live.url, live.tokens.header(live.tokens.operator_electricity), {"topics": "event"}) as power:
        _record(live, "electricity", "telemetry-root", "feeder-2", {"x": 1})
        _record(live, "water", "telemetry-root", "tank-1", {"x": 2})
        (heard_power,) = power.take(1)
        (heard_water,) = water.take(1)
        assert heard_power.data["sector"] == "electricity" and heard_water.data["sector"] == "water"
        assert water.quiet(0.5) == [] and power.quiet(0) == []


def test_the_controllers_alerts_go_to_the_sector_they_act_on(live: Live) -> None:
    """The controller records in its own `control` sector for every sector; its payload names which."""
    from chain.deploy import dev_controller

    with SseClient(live.url, live.tokens.header(live.tokens.operator_water), {"topics": "alert"}) as water, \
            SseClient(live.url, live.tokens.header(live.tokens.operator_electricity), {"topics": "alert"}) as power:
        rec = recorder(live.chain.client, live.chain.settings, dev_controller(live.chain.settings))
        rec.record(kind_by_name("countermeasure"), to_bytes32("plc-2"),
                   canonical_payload({"state": "applied", "type": "safe-mode", "sector": "water"}))
        rec.outbox.close()
        (alert,) = water.take(1)
        assert power.quiet(0.5) == []
    assert alert.data["kind"] == "countermeasure" and alert.data["sector"] == "water"
    assert alert.data["recorder_sector"] == "control" and alert.data["payload"]["type"] == "safe-mode"


def test_node_status_and_votes_are_streamed(live: Live) -> None:
    from tests.support import isolate_by_quorum

    with SseClient(live.url, live.tokens.header(live.tokens.auditor), {"topics": "node-status,vote"}) as client:
        isolate_by_quorum(live.chain, "electricity", "feeder-1", "feeder-1")
        seen = client.until(lambda m: m.event == "node-status", timeout_s=15) + client.quiet(0.5)
    status = [m for m in seen if m.event == "node-status"]
    votes = [m for m in seen if m.event == "vote"]
    assert [(m.data["node"], m.data["to"], m.data["sector"]) for m in status] == [("feeder-1", "isolated", "electricity")]
    events = [v.data["event"] for v in votes]
    assert "ProposalCreated" in events and events.count("VoteCast") >= 3 and "ProposalExecuted" in events
    assert {v.data["action"] for v in votes if "action" in v.data} == {"isolate"}


# --- without a chain: the request is refused before any streaming -------------------------------------

def test_the_stream_needs_a_token_and_valid_parameters(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    assert client.get("/api/v1/stream").status_code == 401
    bad_topic = client.get("/api/v1/stream", params={"topics": "event,gossip"}, headers=tokens.header(tokens.auditor))
    assert bad_topic.status_code == 422 and "gossip" in bad_topic.json()["error"]
    bad_id = client.get("/api/v1/stream", headers={**tokens.header(tokens.auditor), "Last-Event-ID": "12;3"})
    assert bad_id.status_code == 422 and "Last-Event-ID" in bad_id.json()["error"]
    other = client.get("/api/v1/stream", params={"sector": "electricity"},
                       headers=tokens.header(tokens.operator_water))
    assert other.status_code == 403
    unknown = client.get("/api/v1/stream", params={"sector": "gas"}, headers=tokens.header(tokens.auditor))
    assert unknown.status_code == 422


def test_the_follower_outlives_a_missing_chain(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=1)
    app = create_app(settings, follow=False)
    follower = ChainFollower(app.state.ctx, Hub(), interval_s=0.01)
    with caplog.at_level(logging.WARNING, logger="qeaims.api.follower"):
        follower.start()
        time.sleep(0.6)
        assert follower.running and follower.failures >= 2
        follower.stop()
    lines = [r.getMessage() for r in caplog.records if "follower" in r.getMessage()]
    assert len(lines) == 1 and json.loads(lines[0])["event"] == "follower-sync-failed"


def test_a_slow_client_loses_its_oldest_messages_and_is_told() -> None:
    hub = Hub()

    async def scenario() -> list[Message]:
        sub = hub.subscribe(Audience(frozenset({"event"})))
        sent = [Message("event", {"n": n}, f"1:{n}", "water", (1, n)) for n in range(QUEUE_SIZE + 5)]
        thread = threading.Thread(target=hub.publish, args=(sent,))
        thread.start()
        thread.join()
        await asyncio.sleep(0.05)  # the loop runs the hand-over
        return [await sub.get() for _ in range(2)]

    lagged, oldest_kept = asyncio.run(scenario())
    assert lagged.topic == "lagged" and lagged.data["dropped"] == 5 and lagged.data["last_dropped"] == "1:4"
    assert lagged.data["first_dropped"] == "1:0"
    assert oldest_kept.data == {"n": 5}


def test_an_audience_filters_by_topic_and_sector() -> None:
    operator = Audience(frozenset({"event", "proposal", "rewound"}), "water", operator=True)
    assert operator.wants(Message("event", {}, "1:0", "water"))
    assert not operator.wants(Message("event", {}, "1:0", "electricity"))
    assert not operator.wants(Message("proposal", {}, "1:0", None))  # council proposals: not for operators
    assert operator.wants(Message("rewound", {"to_block": 3}))
    auditor = Audience(frozenset({"proposal"}))
    assert auditor.wants(Message("proposal", {}, "1:0", None))
    assert not auditor.wants(Message("event", {}, "1:0", "water"))
    assert auditor.wants(Message("rewound", {"to_block": 3}))  # control messages, whatever the topics


def test_a_chain_that_lost_blocks_is_announced_and_its_events_come_again(fresh_chain: Chain) -> None:
    """The keeper dies, two events are mined and streamed, the chain restarts from its journal without
    them: clients get `rewound`, then the events of every block after the one the index rewound to
    (the journaled event may be among them: a restored chain's blocks need not keep their hashes),
    the two lost ones included once the oracle sends them again."""
    from chain.node import start_anvil
    from tests.support import stop_journaling, wait_journaled

    chain = fresh_chain
    tokens = make_tokens(chain.settings.home / "api")
    app = create_app(chain.settings, follow=True)
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "water", 2))
    with pytest.MonkeyPatch.context() as patch, serving(app) as url:
        patch.setattr(stream_router, "PING_S", 0.2)
        wait_until(lambda: app.state.follower.cursor is not None, 20, what="the follower's first sync")
        with SseClient(url, tokens.header(tokens.auditor), {"topics": "event"}) as client:
            rec.record(kind_by_name("telemetry-root"), to_bytes32("tank-2"), canonical_payload({"n": 0}))
            wait_journaled(chain.settings)
            stop_journaling(chain.settings)
            for n in (1, 2):
                rec.record(kind_by_name("telemetry-root"), to_bytes32("tank-2"), canonical_payload({"n": n}))
            first = client.take(3)
            stop_anvil(chain.settings, hard=True)
            start_anvil(chain.settings)  # replays only what was journaled
            chain.reconnect()
            (rewound,) = client.take(1, topic="rewound", timeout_s=15)
            assert rewound.data["to_block"] < first[1].data["block"]
            rec.client = chain.client
            assert rec.sync() == 2
            rec.flush()
            again = client.until(lambda m: m.data.get("seq") == 3, timeout_s=15)
    rec.outbox.close()
    assert [m.data["seq"] for m in first] == [1, 2, 3]
    # everything after the block the index rewound to comes again, in order, the lost events included
    assert [m.data["seq"] for m in again] == [1, 2, 3][3 - len(again):]
    assert all(m.data["block"] > rewound.data["to_block"] for m in again)
