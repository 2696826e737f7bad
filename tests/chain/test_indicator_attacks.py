"""Adversarial review of the indicator recount (`chain.indicators`) and the recount it shares with the
sensor quarantines (`chain.quarantines.count_cited_verdicts`).

Each test is a finding (review of e546dd8), passing since its fix: it states what must hold. The forged events are recorded by one registered oracle that holds no REPAIR_ROLE (a
single compromised oracle), on a chain of the test's own (`fresh_chain`), because several of them
break every later reader of that chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chain.connect import contract_abis
from chain.deploy import dev_controller
from chain.indexer import Indexer
from chain.indicators import active_indicators, indicator_records
from chain.quarantines import count_cited_verdicts, quarantine_records
from chain.recorder import canonical_payload
from core.indicator_values import indicator_id
from core.kinds import kind_by_name
from intel.feed import indicator_of
from keys.ids import to_bytes32
from tests.chain.test_indicators import NOW, _publish, _verdicts, _withdraw
from tests.support import oracle, recorder

pytestmark = pytest.mark.chain

INTRUSION, INDICATOR = kind_by_name("intrusion"), kind_by_name("indicator")
QUARANTINE = kind_by_name("sensor-quarantine")


def _index(chain: Any, tmp_path: Path) -> Indexer:
    index = Indexer(tmp_path / "attack-index.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    index.sync()
    return index


def _forged_publication(value: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "state": "published", "id": indicator_id("source-address", value), "kind": "source-address", "value": value,
        "confidence": 90, "source_sector": "water", "first_seen": NOW.isoformat(), "expires": NOW.isoformat(),
        "description": "", "evidence": [], "required": 3}
    body.update(changes)
    return body


# What one compromised oracle records as an `indicator` event. None of these may count (no REPAIR_ROLE),
# and none may stop the recount: every sector's feed, the audit and `qeaims intel list` run it.
_CRASHERS: dict[str, bytes] = {
    "evidence seq not a number": canonical_payload(_forged_publication(
        "10.201.0.1", evidence=[["0x" + "11" * 20, "not-a-seq"]])),
    "evidence seq beyond SQLite's integers": canonical_payload(_forged_publication(
        "10.201.0.2", evidence=[["0x" + "11" * 20, 2**64]])),
    "confidence of 1e999 (JSON reads it as infinity)": canonical_payload(_forged_publication(
        "10.201.0.3", confidence=float("inf"))),
}


@pytest.mark.parametrize("payload", list(_CRASHERS.values()), ids=list(_CRASHERS))
def test_one_oracle_cannot_crash_the_indicator_recount(fresh_chain, tmp_path: Path, payload: bytes) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    mallory = oracle(chain.settings, "water", 4)
    recorder(chain.client, chain.settings, mallory).record(INDICATOR, to_bytes32("water"), payload)
    index = _index(chain, tmp_path)
    try:
        [record] = indicator_records(index.db)
    finally:
        index.close()
    assert not record.counts and record.reason


def test_one_oracle_cannot_crash_the_sensor_quarantine_recount(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    mallory = oracle(chain.settings, "water", 4)
    recorder(chain.client, chain.settings, mallory).record(QUARANTINE, to_bytes32("pump-1"), canonical_payload({
        "state": "quarantined", "sector": "water", "sensor": "pump-1/flow", "asset": "pump-1", "node": "pump-1",
        "evidence": [["0x" + "22" * 20, "x"]], "required": 3}))
    index = _index(chain, tmp_path)
    try:
        [record] = quarantine_records(index.db)
    finally:
        index.close()
    assert not record.counts and record.reason


def test_the_quarantine_recount_still_says_which_sensor_a_citation_does_not_name(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    # an oracle of another sector (rejected first, by address order) and a water oracle whose verdict
    # names another sensor, both cited by one quarantine of water's pump-1/flow. Keys are random per
    # deployment: the stranger is the lowest address of the 20 other oracles (banking's 4 alone came
    # after water's highest in one run of 70), so the order fails by chance about once in 10,000.
    others = ("electricity", "sewage", "healthcare", "transportation", "banking")
    stranger = min((oracle(chain.settings, s, i) for s in others for i in (1, 2, 3, 4)),
                   key=lambda o: o.address.lower())
    local = max((oracle(chain.settings, "water", i) for i in (1, 2, 3, 4)), key=lambda o: o.address.lower())
    assert stranger.address.lower() < local.address.lower(), "the test needs the stranger cited first"
    cites = []
    for who, sensor in ((stranger, "pump-1/flow"), (local, "pump-2/flow")):
        seq = recorder(chain.client, chain.settings, who).record(INTRUSION, to_bytes32("pump-1"), canonical_payload({
            "sector": "water", "verdict": "intrusion", "sensors": [[sensor, 0.9]]}))
        cites.append([who.address.lower(), seq])
    recorder(chain.client, chain.settings, oracle(chain.settings, "water", 1)).record(
        QUARANTINE, to_bytes32("pump-1"), canonical_payload({
            "state": "quarantined", "sector": "water", "sensor": "pump-1/flow", "asset": "pump-1", "node": "pump-1",
            "evidence": cites, "required": 3}))
    index = _index(chain, tmp_path)
    try:
        [record] = quarantine_records(index.db)
    finally:
        index.close()
    assert any("an oracle of another sector" in r for r in record.rejected)
    assert any("does not name pump-1/flow first" in r for r in record.rejected), record.rejected


def test_a_publication_without_repair_role_costs_no_recount(fresh_chain, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain  # its own: the forgery would fail every later audit of the session's chain
    mallory = oracle(chain.settings, "water", 3)
    cites = _verdicts(chain, "water", (1, 2, 3), "source-address", "10.202.0.1")
    junk = [[c[0], c[1]] for c in cites] + [["0x" + f"{i:040x}", i] for i in range(60)]
    body = _forged_publication("10.202.0.1", evidence=junk, expires=NOW.isoformat())
    recorder(chain.client, chain.settings, mallory).record(INDICATOR, to_bytes32("water"), canonical_payload(body))
    calls: list[int] = []
    real = count_cited_verdicts

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr("chain.indicators.count_cited_verdicts", counted)
    index = _index(chain, tmp_path)
    try:
        records = [r for r in indicator_records(index.db) if r.body.get("value") == "10.202.0.1"]
    finally:
        index.close()
    assert records and all("REPAIR_ROLE" in r.reason for r in records)
    assert sum(calls) == 0, f"{sum(calls)} citations recounted for a recorder that could never publish"


def test_payloads_here_are_what_the_ledger_takes() -> None:
    """The crashers fit the ledger's 4,096 bytes and the JSON one is JSON (the test would prove nothing else)."""
    for payload in _CRASHERS.values():
        assert len(payload) <= 4096
    assert json.loads(_CRASHERS["confidence of 1e999 (JSON reads it as infinity)"])["confidence"] == float("inf")


def test_a_withdrawn_indicator_cannot_come_back_on_the_evidence_it_was_withdrawn_over(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain, value = fresh_chain, "10.205.0.1"  # its own chain: an indicator left in force skews test_feed's figures
    cites = _verdicts(chain, "water", (1, 2, 3), "source-address", value)
    _publish(chain, cites, "source-address", value)
    _withdraw(chain, "source-address", value)
    _publish(chain, cites, "source-address", value)  # the same three verdicts, after the withdrawal
    index = _index(chain, tmp_path)
    try:
        assert indicator_id("source-address", value) not in active_indicators(index.db)
    finally:
        index.close()


_UNREADABLE: dict[str, dict[str, Any]] = {
    "expires before first_seen": {"first_seen": "2030-01-01T00:00:00+00:00"},
    "a description over 280 characters": {"description": "d" * 300},
    "first_seen that is no time": {"first_seen": "yesterday"},
    "expires in year 9999 at -01:00": {"expires": "9999-12-31T23:59:59-01:00"},
}


@pytest.mark.parametrize("change", list(_UNREADABLE.values()), ids=list(_UNREADABLE))
def test_every_counting_publication_is_one_the_feed_can_read(fresh_chain, tmp_path: Path, change: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    chain, value = fresh_chain, "10.206.0.1"
    cites = _verdicts(chain, "water", (1, 2, 3), "source-address", value)
    body = _forged_publication(value, evidence=cites, expires="2029-01-01T00:00:00+00:00")
    body.update(change)
    recorder(chain.client, chain.settings, dev_controller(chain.settings)).record(
        INDICATOR, to_bytes32("water"), canonical_payload(body))
    index = _index(chain, tmp_path)
    try:
        [record] = indicator_records(index.db)
    finally:
        index.close()
    if record.counts:
        indicator_of(record)  # what every feed does with a counting publication
