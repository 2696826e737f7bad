"""Indicators of compromise published by a sector's quorum and recounted by whoever reads them.

Each test takes a chain of its own: a forgery left on the session's chain would make every later audit of
it fail, and an indicator left in force would skew other tests' propagation figures. Each forgery here must
count for nothing: too few verdicts, verdicts of another sector, a recorder
without REPAIR_ROLE, an id that is not its value's, a withdrawal by a stranger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chain.connect import contract_abis
from chain.deploy import dev_controller
from chain.indexer import Indexer
from chain.indicators import active_indicators, indicator_records
from chain.recorder import canonical_payload
from core.indicator_values import indicator_id
from core.kinds import kind_by_name
from keys.ids import to_bytes32
from tests.support import oracle, recorder

pytestmark = pytest.mark.chain

INTRUSION, INDICATOR = kind_by_name("intrusion"), kind_by_name("indicator")
NOW = datetime.now(UTC)


def _verdicts(chain, sector: str, indexes: tuple[int, ...], kind: str, value: str) -> list[list[Any]]:  # type: ignore[no-untyped-def]
    cites = []
    for i in indexes:
        who = oracle(chain.settings, sector, i)
        seq = recorder(chain.client, chain.settings, who).record(INTRUSION, to_bytes32("gw-1"), canonical_payload({
            "sector": sector, "verdict": "intrusion", "wire": {"class": "unprofiled-function"},
            "indicators": [{"kind": kind, "value": value}]}))
        cites.append([who.address.lower(), seq])
    return cites


def _publish(chain, evidence: list[list[Any]], kind: str, value: str, *, sector: str = "water",  # type: ignore[no-untyped-def]
             by=None, ident: str | None = None, expires: datetime | None = None) -> int:
    body = {"state": "published", "id": ident or indicator_id(kind, value), "kind": kind, "value": value,
            "confidence": 90, "source_sector": sector, "first_seen": NOW.isoformat(),
            "expires": (expires or NOW + timedelta(hours=1)).isoformat(), "description": "",
            "evidence": evidence, "required": 3}
    who = by or dev_controller(chain.settings)
    return recorder(chain.client, chain.settings, who).record(INDICATOR, to_bytes32(sector), canonical_payload(body))


def _withdraw(chain, kind: str, value: str, by=None) -> None:  # type: ignore[no-untyped-def]
    who = by or dev_controller(chain.settings)
    recorder(chain.client, chain.settings, who).record(INDICATOR, to_bytes32("water"), canonical_payload(
        {"state": "withdrawn", "id": indicator_id(kind, value), "reason": "a reassigned address"}))


def _index(chain, tmp_path: Path) -> Indexer:  # type: ignore[no-untyped-def]
    index = Indexer(tmp_path / "index.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    index.sync()
    return index


def test_a_quorum_publishes_and_every_forgery_counts_for_nothing(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    good = _verdicts(chain, "water", (1, 2, 3), "source-address", "10.66.0.1")
    _publish(chain, good, "source-address", "10.66.0.1")
    two = _verdicts(chain, "water", (1, 2), "source-address", "10.66.0.2")
    _publish(chain, [*two, *two], "source-address", "10.66.0.2")  # two of four water oracles (cited twice): no quorum
    strangers = _verdicts(chain, "banking", (1, 2, 3), "source-address", "10.66.0.3")
    _publish(chain, strangers, "source-address", "10.66.0.3")  # banking's oracles claimed for water
    third = _verdicts(chain, "water", (1, 2, 3), "client-id", "eng-ws-9")
    _publish(chain, third, "client-id", "eng-ws-9", by=oracle(chain.settings, "water", 4))  # no REPAIR_ROLE
    _publish(chain, good, "source-address", "10.66.0.1", ident="ab" * 32)  # an id that is not its value's
    _publish(chain, good, "source-address", "10.66.0.9")  # verdicts that name another address
    index = _index(chain, tmp_path)
    try:
        records = {(r.body.get("value"), r.id == indicator_id("source-address", "10.66.0.1") or r.id): r
                   for r in indicator_records(index.db)}
        active = active_indicators(index.db)
    finally:
        index.close()
    ours = {r.body.get("value") for r in active.values()}
    assert "10.66.0.1" in ours
    assert not ours & {"10.66.0.2", "10.66.0.3", "eng-ws-9", "10.66.0.9"}
    reasons = {v: r.reason for (v, _), r in records.items() if r.reason}
    assert "cites 2 matching intrusion verdicts of water, needs 3" in reasons["10.66.0.2"]
    assert "not an Active oracle of the sector" in reasons["10.66.0.3"]
    assert "does not hold REPAIR_ROLE" in reasons["eng-ws-9"]
    assert "does not name indicator source-address 10.66.0.9" in reasons["10.66.0.9"]
    assert any("its id is not the id of its kind and value" in r for r in reasons.values())


def test_a_withdrawal_counts_only_from_the_controller_and_expiry_ends_an_indicator(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    cites = _verdicts(chain, "water", (2, 3, 4), "source-address", "10.77.0.1")
    _publish(chain, cites, "source-address", "10.77.0.1")
    short = _verdicts(chain, "water", (1, 2, 3), "source-address", "10.77.0.2")
    _publish(chain, short, "source-address", "10.77.0.2", expires=datetime.now(UTC) + timedelta(seconds=2))
    _withdraw(chain, "source-address", "10.77.0.1", by=oracle(chain.settings, "water", 1))
    index = _index(chain, tmp_path)
    try:
        assert {indicator_id("source-address", "10.77.0.1"), indicator_id("source-address", "10.77.0.2")} <= set(
            active_indicators(index.db))
        assert indicator_id("source-address", "10.77.0.2") not in active_indicators(
            index.db, now=datetime.now(UTC) + timedelta(seconds=3))
    finally:
        index.close()
    _withdraw(chain, "source-address", "10.77.0.1")
    index = _index(chain, tmp_path)
    try:
        assert indicator_id("source-address", "10.77.0.1") not in active_indicators(index.db)
    finally:
        index.close()


def test_the_audit_reports_every_publication_that_does_not_recount(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    from tests.chain.test_ledger_and_audit import audit

    chain = fresh_chain
    good = _verdicts(chain, "water", (1, 2, 3), "source-address", "10.88.0.1")
    _publish(chain, good, "source-address", "10.88.0.1")
    assert audit(chain).ok
    _publish(chain, good[:2], "source-address", "10.88.0.1")
    [finding] = audit(chain).invalid
    assert "cites 2 matching intrusion verdicts of water, needs 3" in finding["reason"]


def test_a_one_member_sector_decides_nothing(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A vault's recorder is the one member of its own sector, so q(n) = 1 there: the recount must refuse what
    the quorum contract would (its active floor), or one stolen recorder key could publish an indicator."""
    from chain.consortium import vault_sector
    from chain.deploy import dev_vault_recorder

    chain = fresh_chain
    sector = vault_sector("water")
    who = dev_vault_recorder(chain.settings, "water")
    seq = recorder(chain.client, chain.settings, who).record(INTRUSION, to_bytes32("gw-1"), canonical_payload({
        "sector": sector, "verdict": "intrusion", "indicators": [{"kind": "source-address", "value": "10.33.0.1"}]}))
    _publish(chain, [[who.address.lower(), seq]], "source-address", "10.33.0.1", sector=sector)
    index = _index(chain, tmp_path)
    try:
        [record] = [r for r in indicator_records(index.db) if r.body.get("value") == "10.33.0.1"]
        assert "1 Active oracles, below the quorum's floor of 3" in record.reason
        assert indicator_id("source-address", "10.33.0.1") not in active_indicators(index.db)
    finally:
        index.close()


def _countermeasure(chain, body: dict[str, Any], by=None) -> None:  # type: ignore[no-untyped-def]
    who = by or dev_controller(chain.settings)
    recorder(chain.client, chain.settings, who).record(kind_by_name("countermeasure"), to_bytes32("water"),
                                                       canonical_payload(body))


def test_a_countermeasure_stands_only_on_a_quorums_indicator_and_only_the_controller_lifts_it(
        fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    from chain.countermeasures import active_countermeasures, countermeasure_records

    cites = _verdicts(chain, "water", (1, 2, 3), "source-address", "10.22.0.1")
    _publish(chain, cites, "source-address", "10.22.0.1")
    good = indicator_id("source-address", "10.22.0.1")
    quarantine = {"state": "applied", "type": "quarantine-device", "sector": "water", "device": "pump-22",
                  "indicator": good, "reason": "r"}
    _countermeasure(chain, {**quarantine, "id": "cm-22-good"})
    _countermeasure(chain, {**quarantine, "id": "cm-22-no-indicator", "indicator": "ab" * 32})
    _countermeasure(chain, {**quarantine, "id": "cm-22-other-sector", "sector": "banking"})
    _countermeasure(chain, {**quarantine, "id": "cm-22-by-an-oracle"}, by=oracle(chain.settings, "water", 1))
    _countermeasure(chain, {"state": "lifted", "id": "cm-22-good", "reason": "mine"}, by=oracle(chain.settings, "water", 2))
    index = _index(chain, tmp_path)
    try:
        assert "cm-22-good" in active_countermeasures(index.db)
        reasons = {r.id: r.reason for r in countermeasure_records(index.db) if r.id.startswith("cm-22")}
    finally:
        index.close()
    assert "follows no indicator" in reasons["cm-22-no-indicator"]
    assert "follows no indicator" in reasons["cm-22-other-sector"]
    assert "does not hold REPAIR_ROLE" in reasons["cm-22-by-an-oracle"]
    _countermeasure(chain, {"state": "lifted", "id": "cm-22-good", "reason": "pump re-imaged"})
    index = _index(chain, tmp_path)
    try:
        assert not any(i.startswith("cm-22") for i in active_countermeasures(index.db))
    finally:
        index.close()
