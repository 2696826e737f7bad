"""Adversarial review of the controller's indicator publication (`controller._intrusion_response.
_publish_indicators`, `controller.cyber.IndicatorTally`) and what every sector's feed makes of it.

Each test is a finding (review of e546dd8), passing since its fix. The attacker is one oracle, not
even of the sector it writes about (banking's oracle 1 claiming "water"), that names the same
indicator as water's honest quorum: the quorum decides *whether* to publish, but today that one
oracle still writes parts of *what* is published."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from chain.connect import contract_abis
from chain.deploy import dev_vault_recorder
from chain.indexer import Indexer
from chain.indicators import active_indicators
from chain.recorder import canonical_payload
from core.indicator_values import indicator_id
from core.kinds import kind_by_name
from intel.feed import IndicatorFeed
from keys.hybrid import sign_batch
from keys.ids import to_bytes32
from keys.messages import EventToSign
from tests.chain.test_indicators import _verdicts, _withdraw
from tests.controller.test_cyber import _controller
from tests.oracles.test_oracle_node import ledger_events
from tests.support import oracle, recorder

pytestmark = pytest.mark.chain

INTRUSION = kind_by_name("intrusion")


def _poisoned_verdict(chain, value: str, *, vault: bool = False, **fields: object) -> None:  # type: ignore[no-untyped-def]
    """A verdict of banking's oracle 1 (or of banking's vault recorder, the one member of 'vault-banking') that
    claims water and names `value`, with the attacker's own fields."""
    mallory = dev_vault_recorder(chain.settings, "banking") if vault else oracle(chain.settings, "banking", 1)
    recorder(chain.client, chain.settings, mallory).record(INTRUSION, to_bytes32("gw-1"), canonical_payload({
        "sector": "water", "verdict": "intrusion", "indicators": [{"kind": "source-address", "value": value}],
        **fields}))


def _publications(chain, value: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [body for _, _, body in ledger_events(chain, "indicator")
            if body.get("value") == value and body.get("state") == "published"]


def test_one_oracle_cannot_make_a_publication_that_stops_every_feed(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain, value = fresh_chain, "10.203.0.1"
    _poisoned_verdict(chain, value, wire={"class": "c" * 300})
    _verdicts(chain, "water", (1, 2, 3), "source-address", value)  # the honest quorum names the scanner
    ctl = _controller(chain)
    try:
        ctl.run_once()
    finally:
        ctl.close()
    assert len(_publications(chain, value)) == 1
    feed = IndicatorFeed(chain.client, chain.deployment, tmp_path / "feed.sqlite")
    try:
        assert indicator_id("source-address", value) in feed.poll()
    finally:
        feed.stop()


@pytest.mark.parametrize("vault", [False, True], ids=["banking oracle", "banking's vault recorder"])
def test_one_oracle_cannot_crash_the_controller_with_a_first_seen(fresh_chain, vault: bool) -> None:  # type: ignore[no-untyped-def]
    chain, value = fresh_chain, "10.203.0.2"
    _poisoned_verdict(chain, value, vault=vault, first_seen="0001-01-01T00:00:00+01:00")
    _verdicts(chain, "water", (1, 2, 3), "source-address", value)
    ctl = _controller(chain)
    try:
        ctl.run_once()
    finally:
        ctl.close()
    assert len(_publications(chain, value)) == 1


def test_a_withdrawn_indicator_is_not_republished_on_the_verdicts_before_the_withdrawal(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain, value = fresh_chain, "10.203.0.3"
    _verdicts(chain, "water", (1, 2, 3), "source-address", value)
    ctl = _controller(chain)
    try:
        ctl.run_once()
        assert len(_publications(chain, value)) == 1
        _verdicts(chain, "water", (1, 2, 3), "source-address", value)  # the same story, still before the withdrawal
        ctl.run_once()
        assert len(_publications(chain, value)) == 1
    finally:
        ctl.close()
    _withdraw(chain, "source-address", value)  # the control room: a false positive (the controller's outbox)
    again = _controller(chain)
    try:
        again.run_once()
    finally:
        again.close()
    assert len(_publications(chain, value)) == 1, "the withdrawn indicator was published again on old verdicts"


TTL_S = 2.0  # the publications' lifetime here (24 h in the city): long enough for a run_once, short enough to wait


def test_two_sectors_stories_of_one_address_are_each_published_once(fresh_chain, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("controller._intrusion_response.DEFAULT_TTL", timedelta(seconds=TTL_S))
    chain, value = fresh_chain, "10.203.0.4"
    _verdicts(chain, "water", (1, 2, 3), "source-address", value)
    _verdicts(chain, "electricity", (1, 2, 3), "source-address", value)
    ctl = _controller(chain)
    try:
        ctl.run_once()
        first = len(_publications(chain, value))
        for _ in range(2):  # two lifetimes go by; nobody names the address again
            time.sleep(TTL_S + 0.5)
            ctl.run_once()
    finally:
        ctl.close()
    assert first >= 1
    after = _publications(chain, value)
    assert len(after) == first, f"{len(after) - first} more publications of {first} on old verdicts: " + ", ".join(
        str(p["source_sector"]) for p in after)


def test_a_running_controller_does_not_republish_a_withdrawn_indicator(fresh_chain, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("controller._intrusion_response.DEFAULT_TTL", timedelta(seconds=TTL_S))
    chain, value = fresh_chain, "10.203.0.5"
    _verdicts(chain, "water", (1, 2, 3), "source-address", value)
    ctl = _controller(chain)
    try:
        ctl.run_once()
        assert len(_publications(chain, value)) == 1
        _verdicts(chain, "water", (1, 2, 3), "source-address", value)  # the same story, before the withdrawal
        _withdraw(chain, "source-address", value)  # the control room: a false positive
        time.sleep(TTL_S + 0.5)
        ctl.run_once()
    finally:
        ctl.close()
    assert len(_publications(chain, value)) == 1, "the withdrawn indicator was published again on old verdicts"


def test_one_oracle_with_a_broken_signature_cannot_suppress_an_indicator(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain, value = fresh_chain, "10.203.0.6"
    mallory = oracle(chain.settings, "water", 4)
    seq = recorder(chain.client, chain.settings, mallory).chain_last_seq() + 1
    batch = sign_batch(mallory, chain_id=chain.client.chain_id, ledger=chain.deployment.event_ledger,
                       events=[EventToSign(seq=seq, kind=INTRUSION, node=to_bytes32("gw-1"), payload=canonical_payload({
                           "sector": "water", "verdict": "intrusion",
                           "indicators": [{"kind": "source-address", "value": value}]}))])
    broken = bytes([batch.pq_signature[0] ^ 0x55]) + batch.pq_signature[1:]
    chain.client.transact(mallory.account, "EventLedger", "recordBatch", batch.event_inputs(), batch.key_epoch, broken)
    ctl = _controller(chain)
    try:
        _verdicts(chain, "water", (1, 2), "source-address", value)
        ctl.run_once()
        _verdicts(chain, "water", (3,), "source-address", value)  # the third honest voice
        ctl.run_once()
    finally:
        ctl.close()
    index = Indexer(tmp_path / "index.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    try:
        index.sync()
        assert indicator_id("source-address", value) in active_indicators(index.db), "enforced nowhere"
    finally:
        index.close()


def test_one_oracle_cannot_make_the_controller_fail_every_pass(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain, value = fresh_chain, "10.203.0.7"
    for letter in "cd":
        _poisoned_verdict(chain, value, wire={"class": letter * 3000})
    _verdicts(chain, "water", (1, 2, 3), "source-address", value)
    ctl = _controller(chain)
    try:
        ctl.run_once()
    finally:
        ctl.close()
    assert len(_publications(chain, value)) == 1
