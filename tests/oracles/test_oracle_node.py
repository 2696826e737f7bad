"""The oracle loop on a real chain: verdicts once per episode, quorum isolation, replay after a crash.

The detector here is a plain limit on one sensor (`LimitModel`): these tests are about what the
oracle does with a verdict — sign it once, vote on it, survive a crash — not about detection
quality, which `tests/oracles/test_training.py` and `qeaims detect eval` cover.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.quorum import QuorumClient
from core.kinds import kind_by_name
from core.messages import Reading, Sector, Verdict, VerdictKind
from keys.ids import to_bytes32
from oracles.ingest.sink import ReadingSink
from oracles.node import NodeOptions, OracleNode, state_path
from oracles.stream import SectorStream
from tests.support import oracle

SENSORS = ("pump:10/flow_lps", "junction:10/pressure_m")
START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


@dataclass
class LimitModel:
    """FAULT when pump 10's flow drops below `low` (a stopped pump); INTRUSION when pressure is negative."""

    sector: Sector = Sector.WATER
    sensors: tuple[str, ...] = SENSORS
    low: float = 10.0

    def assess(self, recent: NDArray[np.float64], observed_at: datetime) -> Verdict | None:
        flow, pressure = recent[-1]
        if flow < self.low:
            return Verdict(sector=self.sector, asset_id="pump:10", kind=VerdictKind.FAULT, score=self.low - flow,
                           threshold=0.0, sensors=(SENSORS[0],), reason=f"pump 10 flow {flow:.1f} L/s is below "
                           f"{self.low}", observed_at=observed_at)
        if pressure < 0:
            return Verdict(sector=self.sector, asset_id="junction:10", kind=VerdictKind.INTRUSION, score=-pressure,
                           threshold=0.0, sensors=(SENSORS[1],), reason="negative pressure cannot be measured "
                           "there", observed_at=observed_at)
        return None


def readings(rows: list[tuple[float, float]], start: int = 0) -> list[Reading]:
    out = []
    for i, (flow, pressure) in enumerate(rows, start=start):
        at = START + timedelta(minutes=i)
        out.append(Reading(sector=Sector.WATER, asset_id="pump:10", sensor_id=SENSORS[0], quantity="flow",
                           unit="L/s", value=flow, timestamp=at))
        out.append(Reading(sector=Sector.WATER, asset_id="junction:10", sensor_id=SENSORS[1],
                           quantity="pressure_m", unit="m", value=pressure, timestamp=at))
    return out


NORMAL = [(50.0, 40.0)] * 6
PUMP_STOPS = [(0.0, 38.0)] * 8


def make_node(chain, index: int, sink: ReadingSink) -> OracleNode:  # type: ignore[no-untyped-def]
    return OracleNode(settings=chain.settings, client=chain.client, deployment=chain.deployment,
                      identity=oracle(chain.settings, "water", index), model=LimitModel(), sink=sink,
                      options=NodeOptions(batch_size=16, max_age_s=0.0, peer_interval_s=0.0))


def ledger_events(chain, kind: str) -> list[tuple[str, int, dict[str, object]]]:  # type: ignore[no-untyped-def]
    index = Indexer(chain.settings.home / "test-index.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    try:
        index.sync()
        rows = index.db.execute("SELECT oracle, seq, payload FROM events WHERE kind = ? ORDER BY oracle, seq",
                                (kind_by_name(kind),)).fetchall()
    finally:
        index.close()
    return [(str(o), int(s), json.loads(bytes(p))) for o, s, p in rows]


def test_stream_opens_one_episode_per_fault_and_closes_it_after_quiet_rows() -> None:
    stream = SectorStream(LimitModel(), warmup=1, clear_rows=3)
    opened = stream.feed(readings(NORMAL + PUMP_STOPS + NORMAL + PUMP_STOPS[:2]))
    assert [ep.subject for ep in opened] == ["pump-1", "pump-1"]  # pump:10 belongs to the registered pump-1
    assert opened[0].key != opened[1].key and opened[0].anchor == "pump-1"
    # the state is plain JSON and a restored stream continues exactly where the first one was
    twin = SectorStream(LimitModel(), warmup=1, clear_rows=3)
    twin.restore(json.loads(json.dumps(stream.state())))
    more = readings([(50.0, -1.0)] * 2, start=40)
    assert [e.key for e in twin.feed(more)] == [e.key for e in stream.feed(more)]


def test_a_rising_pump_vibration_raises_one_maintenance_episode_before_the_limit() -> None:
    def vibration(values: list[float], start: int = 0) -> list[Reading]:
        return [Reading(sector=Sector.WATER, asset_id="pump-station-1", sensor_id="vibration",
                        quantity="vibration_mm_s", unit="mm/s", value=v, timestamp=START + timedelta(hours=i))
                for i, v in enumerate(values, start=start)]

    rng = np.random.default_rng(3)
    flat = SectorStream(LimitModel())
    assert flat.feed(vibration(list(2.0 + 0.05 * rng.standard_normal(120)))) == []
    wearing = SectorStream(LimitModel())
    # a bearing going bad: +0.03 mm/s an hour from 2.0 (reaches 7.1 after ~7 days), with noise
    values = list(2.0 + 0.03 * np.arange(120) + 0.05 * rng.standard_normal(120))
    opened = wearing.feed(vibration(values))
    assert [(e.verdict.kind, e.subject) for e in opened] == [(VerdictKind.MAINTENANCE, "pump-station-1")]
    assert max(values) < 7.1 and "will reach its limit" in opened[0].verdict.reason
    # the episode survives a restart of the stream and is not opened again
    again = SectorStream(LimitModel())
    again.restore(json.loads(json.dumps(wearing.state())))
    assert again.feed(vibration(list(2.0 + 0.03 * np.arange(120, 140)), start=120)) == []
    fresh = SectorStream(LimitModel())  # whereas a stream that had not seen it would open one now
    fresh.restore({**json.loads(json.dumps(wearing.state())), "wear_open": {}})
    assert len(fresh.feed(vibration(list(2.0 + 0.03 * np.arange(120, 140)), start=120))) == 1


def test_four_oracles_see_a_pump_stop_record_one_fault_each_and_isolate_it_by_quorum(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    data = readings(NORMAL + PUMP_STOPS)
    nodes = []
    for index in (1, 2, 3, 4):
        sink = ReadingSink()
        sink.put_many(data, source="test")
        node = make_node(chain, index, sink)
        nodes.append(node)
        node.run_once()
        node.run_once()  # a second pass finds nothing new to say
        assert node.drain_and_anchor()
    quorum = QuorumClient(chain.client)
    assert quorum.node_status(to_bytes32("pump-1")) == "isolated"
    states = [node.actions()[0][3] for node in nodes]
    assert states == ["voted", "voted", "voted", "moot"]  # the third vote executed; the fourth came too late
    faults = ledger_events(chain, "fault")
    assert len(faults) == 4 and len({o for o, _, _ in faults}) == 4
    assert all(p["subject"] == "pump-1" and p["asset"] == "pump:10" for _, _, p in faults)
    # every reading is anchored: the roots count all 2 × 14 readings once per oracle
    roots = ledger_events(chain, "telemetry-root")
    assert sum(int(p["count"]) for _, _, p in roots) == 4 * len(data)
    for node in nodes:
        node.close()


def test_a_verdict_driven_by_a_quarantined_sensor_isolates_nothing(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    from chain.deploy import dev_controller
    from chain.recorder import canonical_payload
    from tests.support import recorder

    chain = fresh_chain
    # three water oracles found pump 10's flow meter spoofed; the controller quarantined it, citing them
    evidence = []
    for index in (1, 2, 3):
        ident = oracle(chain.settings, "water", index)
        seq = recorder(chain.client, chain.settings, ident).record(kind_by_name("intrusion"), to_bytes32("pump-1"),
                                                                  canonical_payload({"sector": "water",
                                                                                     "sensors": [[SENSORS[0], 0.9]]}))
        evidence.append([ident.address.lower(), seq])
    recorder(chain.client, chain.settings, dev_controller(chain.settings)).record(
        kind_by_name("sensor-quarantine"), to_bytes32("pump-1"), canonical_payload(
            {"state": "quarantined", "sector": "water", "sensor": SENSORS[0], "asset": "pump:10", "node": "pump-1",
             "evidence": evidence, "required": 3}))
    nodes = []
    for index in (1, 2, 3, 4):
        sink = ReadingSink()
        sink.put_many(readings(NORMAL + PUMP_STOPS), source="test")  # the meter now reads zero flow
        node = make_node(chain, index, sink)
        nodes.append(node)
        node.run_once()
        node.run_once()
        assert node.drain_and_anchor()
    assert QuorumClient(chain.client).node_status(to_bytes32("pump-1")) == "active"
    assert all(n.actions()[0][3:] == ("moot", f"driven by quarantined sensor {SENSORS[0]}") for n in nodes)
    assert len(ledger_events(chain, "fault")) == 4  # the verdicts are still on record, for the audit
    for node in nodes:
        node.close()


def test_a_deviation_the_controller_commanded_isolates_nothing_until_undone(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """The controller stopped pump 10 to protect it from a cascade (its isolation-applied event says
    so): the oracles see zero flow and record the fault, but vote nothing on it. A claim recorded by
    an account without the repair role changes nothing; once the controller's reintegrated event
    undoes the command, the same stop is a fault again and is isolated (the untrusted claim, never
    undone, would still hold it)."""
    from chain.deploy import dev_controller
    from chain.recorder import canonical_payload
    from tests.support import recorder

    chain = fresh_chain
    held = {"sector": "water", "asset": "pump:10", "actuator": "pump:10/speed", "action": "stop", "ok": True,
            "already": False}
    forger = recorder(chain.client, chain.settings, oracle(chain.settings, "water", 4))
    forger.record(kind_by_name("isolation-applied"), to_bytes32("pump-1"),
                  canonical_payload({"proposal": 7, "step": "applied", "protected": [held]}))  # never undone
    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    controller.record(kind_by_name("isolation-applied"), to_bytes32("feeder-1"),
                      canonical_payload({"proposal": 7, "step": "applied", "protected": [held]}))
    sinks = [ReadingSink() for _ in range(4)]
    nodes = [make_node(chain, index, sink) for index, sink in enumerate(sinks, 1)]
    for node, sink in zip(nodes, sinks, strict=True):
        sink.put_many(readings(NORMAL + PUMP_STOPS), source="test")
        node.run_once()
        node.run_once()
        assert node.drain_and_anchor()
    quorum = QuorumClient(chain.client)
    assert quorum.node_status(to_bytes32("pump-1")) == "active"
    assert all(n.actions()[0][3] == "moot" and "held by the controller: pump:10/speed stop (isolation 7)"
               in n.actions()[0][4] for n in nodes), nodes[0].actions()
    controller.record(kind_by_name("reintegrated"), to_bytes32("feeder-1"),
                      canonical_payload({"proposal": 7, "step": "reintegrated", "unprotected": [held]}))
    at = len(NORMAL + PUMP_STOPS)
    for node, sink in zip(nodes, sinks, strict=True):  # running normally again, then a real stop
        node.run_once()  # its peer check reads the chain (the undo) at most one peer interval late
        sink.put_many(readings(NORMAL * 2 + PUMP_STOPS, start=at), source="test")
        node.run_once()
        node.run_once()
        node.drain_and_anchor()
    assert quorum.node_status(to_bytes32("pump-1")) == "isolated"
    for node in nodes:
        node.close()


def test_a_crash_after_the_verdict_was_written_ahead_does_not_record_it_twice(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    sink = ReadingSink()
    node = make_node(chain, 1, sink)
    sink.put_many(readings(NORMAL), source="test")
    node.run_once()
    before = node.cursor
    # keep the oracle's state as it was before the fault: as if the process died after the outbox
    # append but before the state commit that moves the cursor
    state = state_path(chain.settings, chain.deployment.deployment_id, node.me)
    saved = state.with_suffix(".saved")
    node._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(state, saved)
    sink.put_many(readings(PUMP_STOPS, start=len(NORMAL)), source="test")
    node.run_once()
    assert node.drain_and_anchor()
    node.close()
    shutil.copy(saved, state)
    for extra in (Path(str(state) + "-wal"), Path(str(state) + "-shm")):
        extra.unlink(missing_ok=True)

    again = make_node(chain, 1, ReadingSink())
    # it started behind the readings it had judged, and replayed them from its store at start
    assert again.stats.judged == len(readings(PUMP_STOPS)) and again.cursor == before + again.stats.judged
    again.run_once()
    assert again.drain_and_anchor()
    faults = ledger_events(chain, "fault")
    assert len(faults) == 1, faults
    assert [a[3] for a in again.actions()] == ["voted"]  # the replayed episode still gets its vote, once
    again.close()


def test_a_chain_outage_delays_anchoring_and_verdicts_but_loses_nothing(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    from chain.node import start_anvil, stop_anvil

    chain = fresh_chain
    sink = ReadingSink()
    node = make_node(chain, 2, sink)
    sink.put_many(readings(NORMAL), source="test")
    node.run_once()
    assert node.drain_and_anchor()
    stop_anvil(chain.settings)
    try:
        sink.put_many(readings(PUMP_STOPS, start=len(NORMAL)), source="test")
        node.run_once()
        assert node.stats.chain_errors >= 1 and node.stats.stored == len(NORMAL + PUMP_STOPS) * 2
    finally:
        start_anvil(chain.settings)
    chain.reconnect()
    node.close()
    again = OracleNode(settings=chain.settings, client=chain.client, deployment=chain.deployment,
                       identity=oracle(chain.settings, "water", 2), model=LimitModel(), sink=ReadingSink(),
                       options=NodeOptions(batch_size=16, max_age_s=0.0, peer_interval_s=0.0))
    assert again.drain_and_anchor()
    assert len(ledger_events(chain, "fault")) == 1
    roots = ledger_events(chain, "telemetry-root")
    assert sum(int(p["count"]) for _, _, p in roots) == len(NORMAL + PUMP_STOPS) * 2
    again.close()


def test_a_vote_the_chain_lost_is_cast_again_after_the_outage(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    sink = ReadingSink()
    node = make_node(chain, 3, sink)
    sink.put_many(readings(NORMAL + PUMP_STOPS), source="test")
    node.run_once()
    assert node.drain_and_anchor()
    (episode, target, _, state, detail) = node.actions()[0]
    assert (target, state) == ("pump-1", "voted")
    proposal = int(detail.split()[-1])
    assert chain.client.call1("IsolationQuorum", "hasVoted", proposal, node.me)
    # as if the block holding the vote had been lost: the record points at a proposal without it
    node._db.execute("UPDATE actions SET detail = 'proposal 999' WHERE episode = ?", (episode,))
    node._recheck = True
    node.run_once()
    assert node.actions()[0][3:] == ("voted", f"proposal {proposal}")  # voted again: the open proposal answered
    node.close()


def _isolated_repaired_and_back(chain) -> tuple[list[OracleNode], list[ReadingSink], int]:  # type: ignore[no-untyped-def]
    """Four oracles isolate pump-1, the controller repairs it, fresh readings vote it back: (the
    oracles, their sinks, the minute of the next reading)."""
    from chain.deploy import dev_controller

    sinks = [ReadingSink() for _ in range(4)]
    nodes = [make_node(chain, i + 1, sink) for i, sink in enumerate(sinks)]
    for node, sink in zip(nodes, sinks, strict=True):
        sink.put_many(readings(NORMAL + PUMP_STOPS), source="test")
        node.run_once()
        assert node.drain_and_anchor()
    quorum = QuorumClient(chain.client)
    assert quorum.node_status(to_bytes32("pump-1")) == "isolated"
    controller = dev_controller(chain.settings)
    chain.client.transact(controller.account, "IsolationQuorum", "beginRepair", to_bytes32("pump-1"))
    for node in nodes:  # each oracle learns of the repair; with no fresh readings, nobody vouches for it
        node.run_once()
        node.run_once()
    assert quorum.node_status(to_bytes32("pump-1")) == "repairing"
    repaired = readings(NORMAL * 2, start=len(NORMAL + PUMP_STOPS))  # the crew fixed it: flow is back
    for node, sink in zip(nodes, sinks, strict=True):
        sink.put_many(repaired, source="test")
        node._next_peer_check = 0.0
        node.run_once()
    # healthy readings alone vouch for nothing: the crew has not reported the repair (in the storm day
    # a failed-over data centre's verdicts turned to anomalies, and it was voted back while still down)
    assert quorum.node_status(to_bytes32("pump-1")) == "repairing"
    _repaired(chain, len(NORMAL + PUMP_STOPS))
    for node in nodes:  # its field time: the readings from then on are the fresh ones
        node._next_peer_check = 0.0
        node.run_once()
    assert quorum.node_status(to_bytes32("pump-1")) == "active"
    return nodes, sinks, len(NORMAL + PUMP_STOPS) + 2 * len(NORMAL)


def _repaired(chain, minute: int) -> None:  # type: ignore[no-untyped-def]
    """The controller's `repaired` step: the crew's repair took effect at `minute` by the field's clock."""
    from chain.deploy import dev_controller
    from chain.recorder import canonical_payload
    from tests.support import recorder

    recorder(chain.client, chain.settings, dev_controller(chain.settings)).record(
        kind_by_name("repaired"), to_bytes32("pump-1"),
        canonical_payload({"proposal": 1, "step": "repaired", "node": "pump-1", "asset": "pump:10",
                           "field_ok": True, "field_error": "", "at": (START + timedelta(minutes=minute)).isoformat()}))


def _failed_back(chain, minute: int) -> None:  # type: ignore[no-untyped-def]
    """The controller's `reintegrated` step: the pump restarted at `minute` by the field's clock."""
    from chain.deploy import dev_controller
    from chain.recorder import canonical_payload
    from tests.support import recorder

    restart = {"sector": "water", "asset": "pump:10", "actuator": "pump:10/speed", "action": "start", "ok": True,
               "answer": "acked", "at": (START + timedelta(minutes=minute)).isoformat()}
    recorder(chain.client, chain.settings, dev_controller(chain.settings)).record(
        kind_by_name("reintegrated"), to_bytes32("pump-1"),
        canonical_payload({"proposal": 2, "step": "reintegrated", "node": "pump-1", "acks": [restart]}))


def _transient_waits_then_is_moot(chain, nodes: list[OracleNode], node: OracleNode, sink: ReadingSink,  # type: ignore[no-untyped-def]
                                  start: int, *, why: str = "the restart's transient waits") -> None:
    """The restart's transient arrives from `start` on: its vote waits inside the settling window, then
    is moot once the pump runs on; the pump stays active. Closes the oracles."""
    sink.put_many(readings(PUMP_STOPS[:1] + NORMAL[:1], start=start), source="test")
    node.run_once()
    assert node.settling("pump-1"), why
    assert node.actions()[-1][1::2] == ("pump-1", "pending")
    sink.put_many(readings(NORMAL * 2, start=start + 2), source="test")
    node.run_once()
    assert not node.settling("pump-1")
    assert node.actions()[-1][1::2] == ("pump-1", "moot")
    assert QuorumClient(chain.client).node_status(to_bytes32("pump-1")) == "active"
    for n in nodes:
        n.close()


def test_oracles_vote_a_repaired_node_back_once_fresh_readings_are_healthy(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    nodes, sinks, at = _isolated_repaired_and_back(chain)
    quorum = QuorumClient(chain.client)
    _failed_back(chain, at)
    # the pump restarts under the reintegration's commands: a row or two look like a stop again. The
    # oracles judge it before their peer check has noticed the reintegration: the vote must still wait
    # (it and what depends on it settle for 2 x clear_rows rows from the restart the controller recorded)
    for node, sink in zip(nodes, sinks, strict=True):
        node._next_peer_check = float("inf")
        sink.put_many(readings(PUMP_STOPS[:1] + NORMAL[:1], start=at), source="test")
        node.run_once()
        node._next_peer_check = 0.0
    assert quorum.node_status(to_bytes32("pump-1")) == "active"  # the votes wait for the node to settle
    at += 2
    settle = readings(NORMAL * 2, start=at)  # it settles: the transient was not a fault
    for node, sink in zip(nodes, sinks, strict=True):
        sink.put_many(settle, source="test")
        node.run_once()  # its peer pass indexes the controller's step: the restart's field time
        node.run_once()
        moot = node._db.execute("SELECT detail FROM actions WHERE state = 'moot'").fetchall()
        assert any("settled after its reintegration" in str(d) for (d,) in moot), moot
    assert quorum.node_status(to_bytes32("pump-1")) == "active"
    at += len(settle) // 2
    for node, sink in zip(nodes, sinks, strict=True):  # a real failure after the window is voted on as before
        sink.put_many(readings(PUMP_STOPS, start=at), source="test")
        node.run_once()
        node.drain_and_anchor()
    assert quorum.node_status(to_bytes32("pump-1")) == "isolated"
    # what depends on a reintegrated node at once settles with it: a data centre's switch fails back too
    nodes[0]._settled_from_repair("dc-primary")
    assert {"dc-primary", "switch-1", "atm-cluster-1"} <= set(nodes[0]._settling)
    for node in nodes:
        node.close()


def test_a_controller_step_that_lands_after_the_wait_still_gives_the_fail_back_time(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """The storm day's `switch-1` again, a run later: the controller's `reintegrated` step landed 69 s
    after the node was back (its acknowledgement crossed the same loaded broker). The oracle had
    stopped waiting for it, and the rows it counted while waiting ended the window at once. It now
    counts afresh when it stops waiting, and takes the step's field time when the step does come."""
    chain = fresh_chain
    nodes, sinks, at = _isolated_repaired_and_back(chain)
    node, sink = nodes[0], sinks[0]
    node.peers.index.sync()
    node._verify_repairs()  # back on-chain; the controller's step is not there yet
    assert node.settling("pump-1")
    node._next_peer_check = float("inf")
    sink.put_many(readings(NORMAL * 6, start=at), source="test")  # 36 rows from before the restart: over 3 x settle_rows
    node.run_once()
    node._next_peer_check = 0.0
    node.run_once()  # its peer pass finds no step: it stops waiting, and counts from here
    assert not node._settling["pump-1"].waiting
    assert node.settling("pump-1"), "the rows counted while waiting for the step do not end the window"
    sink.put_many(readings(NORMAL * 2, start=at + 36), source="test")  # 12 more rows from before the restart
    node._next_peer_check = float("inf")
    node.run_once()
    assert not node.settling("pump-1")  # counted by arrival, the window is over
    start = at + 48
    _failed_back(chain, start)  # the step lands: the restart was after those rows
    node._next_peer_check = 0.0
    node.run_once()
    assert node.settling("pump-1"), "the fail-back's field time counts even after the wait"
    node._next_peer_check = float("inf")
    _transient_waits_then_is_moot(chain, nodes, node, sink, start)


def test_an_oracle_whose_readings_arrive_late_settles_from_the_fail_back_field_time(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """The storm day's `switch-1`: its oracles got the readings a minute late (a starved broker),
    so the readings that arrived after they learned of the reintegration still predated the
    fail-back; counted on those, the settling window was over before the transient came, and they
    voted on it. The window counts from the restart's own field time, which the controller records."""
    chain = fresh_chain
    nodes, sinks, at = _isolated_repaired_and_back(chain)
    node, sink = nodes[0], sinks[0]
    _failed_back(chain, at + 18)
    node.peers.index.sync()
    node._verify_repairs()  # it learns of the reintegration with nothing left to judge
    assert node.settling("pump-1") and node.backlog() == 0
    node._next_peer_check = float("inf")
    sink.put_many(readings(NORMAL * 3, start=at), source="test")  # 18 rows from before the restart, arriving late
    node.run_once()
    _transient_waits_then_is_moot(chain, nodes, node, sink, at + 18,
                                  why="the window counts rows from the restart, not rows that arrived after it was known")
