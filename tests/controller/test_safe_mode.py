"""Automatic safe mode (`controller._safe_mode`, recounted by `chain.countermeasures`): a sector whose quorum
published command attacks on three distinct devices within an hour refuses writes, not readings; every
way around the rule counts for nothing.

Each test takes a chain of its own (`fresh_chain`): they leave forged events and indicators in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chain.connect import contract_abis
from chain.countermeasures import SAFE_MODE_DEVICES, active_countermeasures, countermeasure_records
from chain.deploy import dev_controller
from chain.indexer import Indexer
from chain.recorder import canonical_payload
from core.indicator_values import indicator_id
from core.kinds import kind_by_name
from gateway import Policy
from intel.enforce import gateway_enforcer
from intel.feed import IndicatorFeed
from keys.ids import to_bytes32
from tests.chain.test_indicators import _publish, _withdraw
from tests.chain.test_ledger_and_audit import audit
from tests.controller.test_cyber import _controller
from tests.oracles.test_oracle_node import ledger_events
from tests.support import oracle, recorder

pytestmark = pytest.mark.chain

INTRUSION, COUNTERMEASURE = kind_by_name("intrusion"), kind_by_name("countermeasure")


def _attack(chain, sector: str, device: str, address: str, indexes: tuple[int, ...] = (1, 2, 3),  # type: ignore[no-untyped-def]
            wire_class: str = "unprofiled-function", subjects: dict[int, str] | None = None) -> list[list[Any]]:
    """Wire verdicts of ``sector``'s oracles ``indexes``: a command attack from ``address`` on ``device``
    (``subjects``: an oracle that names another device)."""
    cites = []
    for i in indexes:
        who = oracle(chain.settings, sector, i)
        subject = (subjects or {}).get(i, device)
        seq = recorder(chain.client, chain.settings, who).record(INTRUSION, to_bytes32(subject), canonical_payload({
            "sector": sector, "subject": subject, "asset": subject, "verdict": "intrusion",
            "wire": {"class": wire_class, "protocol": "modbus", "source": {"address": address}},
            "indicators": [{"kind": "source-address", "value": address}]}))
        cites.append([who.address.lower(), seq])
    return cites


def _safe_modes(chain) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [p for _, _, p in ledger_events(chain, "countermeasure") if p.get("type") == "safe-mode"
            or str(p.get("id", "")).startswith("safe-mode")]


def _measure(chain, body: dict[str, Any], by=None) -> None:  # type: ignore[no-untyped-def]
    who = by or dev_controller(chain.settings)
    recorder(chain.client, chain.settings, who).record(COUNTERMEASURE, to_bytes32(str(body.get("sector", "x"))),
                                                       canonical_payload(body))


def _recount(chain, tmp_path: Path, now: datetime | None = None) -> tuple[dict[str, Any], dict[str, str]]:  # type: ignore[no-untyped-def]
    """(the countermeasures in force, by id; why each one that does not count does not)."""
    index = Indexer(tmp_path / f"index-{datetime.now(UTC).timestamp()}.sqlite", chain.client.rpc, chain.deployment,
                    contract_abis())
    try:
        index.sync()
        active = active_countermeasures(index.db, now=now)
        reasons = {r.id: r.reason for r in countermeasure_records(index.db) if r.reason}
    finally:
        index.close()
    return active, reasons


def test_a_campaign_on_three_devices_puts_the_sector_in_safe_mode_once_and_only_then(  # type: ignore[no-untyped-def]
        fresh_chain, tmp_path: Path) -> None:
    chain = fresh_chain
    policy, feed = Policy(), IndicatorFeed(chain.client, chain.deployment, tmp_path / "feed.sqlite")
    feed.add(gateway_enforcer("water-gw", policy, "water"))
    ctl = _controller(chain)
    try:
        _attack(chain, "water", "pump-a", "10.31.0.1")
        _attack(chain, "water", "pump-b", "10.31.0.2", wire_class="replay")
        _attack(chain, "water", "valve-c", "10.31.0.3", indexes=(1,))  # one oracle's word: not published
        _attack(chain, "electricity", "relay-1", "10.31.0.4")  # another sector's quorum, another sector's device
        _attack(chain, "water", "tank-d", "10.31.0.5", subjects={3: "tank-e"})  # two say tank-d, one tank-e
        _attack(chain, "water", "meter-f", "10.31.0.6", wire_class="register-scan")  # a scan is no command attack
        ctl.run_once()
        published = [p for _, _, p in ledger_events(chain, "indicator")]
        assert len(published) == 5  # every quorum's indicator is published; the campaign is not there yet
        assert _safe_modes(chain) == [], "safe mode on two devices shown by a quorum (K-1)"
        feed.poll()
        assert policy.refuses_writes("valve-c", "water-gw") is None

        _attack(chain, "water", "valve-c", "10.31.0.3", indexes=(2, 3, 4))  # now its quorum: the third device
        ctl.run_once()
        [applied] = _safe_modes(chain)
        assert applied["sector"] == "water" and applied["devices"] == ["pump-a", "pump-b", "valve-c"]
        assert len(applied["indicators"]) == 3
        ctl.run_once()
    finally:
        ctl.close()
    again = _controller(chain)  # a restart decides nothing twice
    try:
        again.run_once()
    finally:
        again.close()
    assert len(_safe_modes(chain)) == 1
    active, reasons = _recount(chain, tmp_path)
    assert applied["id"] in active and not reasons.get(applied["id"])
    feed.poll()
    assert policy.refuses_writes("meter-f", "water-gw") == "safe-mode", "a device of the sector still takes writes"
    feed.stop()
    assert audit(chain).ok  # type: ignore[no-untyped-call]


def test_safe_mode_lapses_with_its_evidence_and_a_lift_is_not_undone(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    for n, device in enumerate(("pump-a", "pump-b", "valve-c", "tank-d")):
        _attack(chain, "water", device, f"10.32.0.{n + 1}")
    policy, feed = Policy(), IndicatorFeed(chain.client, chain.deployment, tmp_path / "feed.sqlite")
    feed.add(gateway_enforcer("water-gw", policy, "water"))
    ctl = _controller(chain)
    try:
        ctl.run_once()
        [first] = _safe_modes(chain)
        assert first["devices"] == ["pump-a", "pump-b", "tank-d", "valve-c"]
        _withdraw(chain, "source-address", "10.32.0.1")  # four devices, one withdrawn: three hold
        ctl.run_once()
        assert first["id"] in _recount(chain, tmp_path)[0]
        feed.poll()
        assert policy.refuses_writes("meter-z", "water-gw") == "safe-mode"
        _withdraw(chain, "source-address", "10.32.0.2")  # two left: the campaign's evidence lapsed
        assert first["id"] not in _recount(chain, tmp_path)[0], "a reader still enforces a lapsed safe mode"
        feed.poll()  # the gateway lets writes through again before the controller has recorded anything
        assert policy.refuses_writes("meter-z", "water-gw") is None
        ctl.run_once()
        lifts = [p for p in _safe_modes(chain) if p["state"] == "lifted"]
        assert [p["id"] for p in lifts] == [first["id"]] and "evidence lapsed" in lifts[0]["reason"]

        # a new campaign: three fresh devices; the control room lifts it; the same evidence decides nothing again
        for n, device in enumerate(("pump-x", "pump-y", "pump-z")):
            _attack(chain, "water", device, f"10.32.1.{n + 1}")
        ctl.run_once()
        second = [p for p in _safe_modes(chain) if p["state"] == "applied" and p["id"] != first["id"]]
        # tank-d and valve-c are still in force but were published before the lift: a new campaign, fresh devices
        assert len(second) == 1 and second[0]["devices"] == ["pump-x", "pump-y", "pump-z"]
        _measure(chain, {"state": "lifted", "id": second[0]["id"], "reason": "control room: pumps re-imaged"})
        ctl.run_once()
        ctl.run_once()
        assert len([p for p in _safe_modes(chain) if p["state"] == "applied"]) == 2, "the lift was undone"
        active, _ = _recount(chain, tmp_path)
        assert not [i for i in active if i.startswith("safe-mode")]
    finally:
        ctl.close()
        feed.stop()


def test_safe_mode_stands_on_nothing_but_its_own_sectors_quorum(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Safe-mode events written by hand (the controller's identity, or an oracle's), each trying one way round
    the rule: none counts, and the one that follows the rule does."""
    chain = fresh_chain
    far = datetime.now(UTC) + timedelta(days=1)
    ids: dict[str, str] = {}
    for n, device in enumerate(("pump-a", "pump-b", "valve-c")):
        address = f"10.33.0.{n + 1}"
        _publish(chain, _attack(chain, "water", device, address), "source-address", address, expires=far)
        ids[device] = indicator_id("source-address", address)
    elec = []
    for n, device in enumerate(("relay-1", "relay-2", "relay-3")):
        address = f"10.33.1.{n + 1}"
        _publish(chain, _attack(chain, "electricity", device, address), "source-address", address,
                 sector="electricity", expires=far)
        elec.append(indicator_id("source-address", address))
    lone = _attack(chain, "water", "tank-d", "10.33.2.1", indexes=(1,))
    _publish(chain, lone, "source-address", "10.33.2.1", expires=far)  # one oracle's verdict: it does not recount
    two = list(ids.values())[:2]
    base = {"state": "applied", "type": "safe-mode", "sector": "water", "reason": "r"}
    _measure(chain, {**base, "id": "sm-oracle", "indicators": list(ids.values())}, by=oracle(chain.settings, "water", 1))
    _measure(chain, {**base, "id": "sm-other-sector", "indicators": elec})
    _measure(chain, {**base, "id": "sm-k-minus-one", "indicators": two})
    _measure(chain, {**base, "id": "sm-one-oracle", "indicators": [*two, indicator_id("source-address", "10.33.2.1")]})
    _measure(chain, {**base, "id": "sm-electricity-claimed", "sector": "electricity", "indicators": list(ids.values())})
    _measure(chain, {**base, "id": "sm-no-list", "indicators": "all"})
    _measure(chain, {**base, "id": "sm-too-many", "indicators": [*ids.values(), *(["ab" * 32] * 40)]})
    _measure(chain, {**base, "id": "sm-not-ids", "indicators": [1, None, {"x": 1}]})
    _measure(chain, {**base, "id": "sm-vault", "sector": "vault-water", "indicators": list(ids.values())})
    _measure(chain, {**base, "id": "sm-claims-more", "indicators": list(ids.values()),
                     "devices": ["pump-a", "pump-b", "valve-c", "dam-gate"]})
    _measure(chain, {**base, "id": "sm-bad-devices", "indicators": list(ids.values()), "devices": "pump-a"})
    _measure(chain, {"state": "applied", "id": "sm-no-sector", "type": "safe-mode", "indicators": list(ids.values())})
    _measure(chain, {"state": "applied", "id": ["sm"], "type": "safe-mode", "sector": "water"})
    _measure(chain, {**base, "id": "sm-good", "indicators": list(ids.values())})
    _measure(chain, {**base, "id": "sm-good", "indicators": list(ids.values())})  # the same id twice
    active, reasons = _recount(chain, tmp_path)
    assert [i for i in active if i.startswith("sm-")] == ["sm-good"]
    assert "does not hold REPAIR_ROLE" in reasons["sm-oracle"]
    for forged in ("sm-other-sector", "sm-k-minus-one", "sm-one-oracle", "sm-electricity-claimed"):
        assert f"needs {SAFE_MODE_DEVICES}" in reasons[forged], (forged, reasons[forged])
    assert "devices (pump-a, pump-b) published" in reasons["sm-k-minus-one"]
    assert "cites no list" in reasons["sm-no-list"] and "cites no list" in reasons["sm-too-many"]
    assert "cites no list" in reasons["sm-not-ids"]
    assert f"needs {SAFE_MODE_DEVICES}" in reasons["sm-vault"]
    assert "names devices its indicators do not show under command attack: dam-gate" in reasons["sm-claims-more"]
    assert "not a list of names" in reasons["sm-bad-devices"]
    assert "unknown state or type" in reasons["sm-no-sector"]

    # a withdrawn indicator: the safe mode lapses for every reader, and a new one citing it stands on two devices
    _withdraw(chain, "source-address", "10.33.0.3")
    _measure(chain, {**base, "id": "sm-after-withdrawal", "indicators": list(ids.values())})
    active, reasons = _recount(chain, tmp_path)
    assert "sm-good" not in active and "sm-after-withdrawal" not in active
    assert f"needs {SAFE_MODE_DEVICES}" in reasons["sm-after-withdrawal"]


def test_an_old_safe_mode_recorded_again_counts_for_nothing(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    far = datetime.now(UTC) + timedelta(days=1)
    ids = []
    for n, device in enumerate(("pump-a", "pump-b", "valve-c")):
        address = f"10.34.0.{n + 1}"
        _publish(chain, _attack(chain, "water", device, address), "source-address", address, expires=far)
        ids.append(indicator_id("source-address", address))
    old = {"state": "applied", "id": "sm-1", "type": "safe-mode", "sector": "water", "indicators": ids,
           "devices": ["pump-a", "pump-b", "valve-c"], "reason": "a campaign"}
    _measure(chain, old)
    assert "sm-1" in _recount(chain, tmp_path)[0]
    _measure(chain, {"state": "lifted", "id": "sm-1", "reason": "control room: the campaign is over"})
    _measure(chain, old)  # replayed word for word
    _measure(chain, {**old, "id": "sm-2"})  # the same evidence under a new id
    active, reasons = _recount(chain, tmp_path)
    assert not [i for i in active if i.startswith("sm-")]
    assert "an id is applied once" in reasons["sm-1"]
    assert "since the last lift" in reasons["sm-2"]


def test_safe_mode_ends_when_its_indicators_expire_and_needs_them_within_the_hour(  # type: ignore[no-untyped-def]
        fresh_chain, tmp_path: Path) -> None:
    chain = fresh_chain
    far = datetime.now(UTC) + timedelta(days=1)
    ids = []
    for n, device in enumerate(("pump-a", "pump-b", "valve-c")):
        address = f"10.35.0.{n + 1}"
        _publish(chain, _attack(chain, "water", device, address), "source-address", address, expires=far)
        ids.append(indicator_id("source-address", address))
    base = {"state": "applied", "type": "safe-mode", "sector": "water", "indicators": ids, "reason": "r"}
    _measure(chain, {**base, "id": "sm-now"})
    assert "sm-now" in _recount(chain, tmp_path)[0]
    assert "sm-now" not in _recount(chain, tmp_path, now=far + timedelta(seconds=1))[0], "it outlives its evidence"
    chain.client.rpc.call("evm_increaseTime", [2 * 3600])  # two hours on: in force still, but no campaign of now
    chain.client.rpc.call("evm_mine", [])
    _measure(chain, {**base, "id": "sm-late"})
    _, reasons = _recount(chain, tmp_path)
    assert f"needs {SAFE_MODE_DEVICES}" in reasons["sm-late"]


def test_the_controller_records_the_lift_when_the_campaigns_indicators_expire(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    import time

    chain = fresh_chain
    soon = datetime.now(UTC) + timedelta(seconds=4)
    for n, device in enumerate(("pump-a", "pump-b", "valve-c")):
        address = f"10.37.0.{n + 1}"
        _publish(chain, _attack(chain, "water", device, address), "source-address", address, expires=soon)
    ctl = _controller(chain)
    try:
        ctl.run_once()
        [applied] = _safe_modes(chain)
        assert ctl._safe_modes is not None
        ctl._safe_modes.recheck_s = 0.5  # the loop's 15 s recheck, shortened for the test
        time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 1.0)
        ctl.run_once()
        ctl.run_once()
    finally:
        ctl.close()
    assert [(p["id"], p["state"]) for p in _safe_modes(chain)] == [(applied["id"], "applied"), (applied["id"], "lifted")]
