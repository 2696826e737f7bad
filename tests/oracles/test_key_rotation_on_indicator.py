"""An oracle whose key an indicator in force names rotates it (`oracles.node.key_watch`, `chain.rotation`);
no other oracle does, and neither one oracle's word nor a withdrawn indicator rotates anything.

Each test takes a chain of its own (`fresh_chain`): they leave indicators in force and rotated keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain.connect import contract_abis
from chain.deploy import oracle_keystore
from chain.indexer import Indexer
from chain.rotation import key_fingerprint, rotate_oracle_key, rotations_on_indicators
from core.indicator_values import indicator_id
from keys.identity import HybridIdentity
from keys.keystore import load_keystore
from oracles.ingest.sink import ReadingSink
from oracles.node import KeyRotationOwed, NodeOptions, OracleNode
from tests.chain.test_indicators import _publish, _verdicts, _withdraw
from tests.controller.test_cyber import _controller
from tests.oracles.test_oracle_node import LimitModel, ledger_events
from tests.support import oracle

pytestmark = pytest.mark.chain


def _node(chain, identity: HybridIdentity) -> OracleNode:  # type: ignore[no-untyped-def]
    return OracleNode(settings=chain.settings, client=chain.client, deployment=chain.deployment, identity=identity,
                      model=LimitModel(), sink=ReadingSink(), options=NodeOptions(peer_interval_s=0.0))


def _fingerprint(identity: HybridIdentity) -> str:
    return key_fingerprint(identity.pq_public_key)


def test_the_named_oracle_rotates_once_and_no_other_does(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    named, other = oracle(chain.settings, "water", 4), oracle(chain.settings, "water", 3)
    old = _fingerprint(named)
    _verdicts(chain, "banking", (1, 2, 3), "key-fingerprint", old)  # banking's quorum saw water-4's key misused
    ctl = _controller(chain)
    try:
        ctl.run_once()
    finally:
        ctl.close()
    [(_, _, published)] = ledger_events(chain, "indicator")
    assert (published["kind"], published["value"]) == ("key-fingerprint", old)

    bystander = _node(chain, other)
    try:
        bystander.run_once()
        bystander.run_once()
        assert bystander._key_watch.recounts == 0, "an indicator naming another key cost this oracle a recount"
    finally:
        bystander.close()
    node = _node(chain, named)
    with pytest.raises(KeyRotationOwed, match="names its key") as raised:
        node.run_once()
    node.close()
    assert raised.value.indicator == indicator_id("key-fingerprint", old)
    assert raised.value.reason.startswith("named by indicator")

    keystore = oracle_keystore(chain.settings, "water", 4)  # what `qeaims oracle` does on KeyRotationOwed
    result = rotate_oracle_key(chain.client, keystore, chain.settings.passphrase)
    assert result.new_epoch == result.old_epoch + 1 and not result.resumed
    renewed = load_keystore(keystore, chain.settings.passphrase)
    assert _fingerprint(renewed) != old and renewed.address == named.address
    again = _node(chain, renewed)
    try:
        again.run_once()  # the same indicator names the old key only: served on, not rotated again
        again.run_once()
    finally:
        again.close()
    assert int(chain.client.call1("Registry", "oracle", named.address)[3]) == result.new_epoch
    assert int(chain.client.call1("Registry", "oracle", other.address)[3]) == 1

    index = Indexer(tmp_path / "index.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    try:
        index.sync()
        [answer] = rotations_on_indicators(index.db)
    finally:
        index.close()
    assert (answer.oracle, answer.epoch, answer.fingerprint) == (named.address.lower(), 1, old)
    assert answer.rotated is not None and answer.rotated > answer.published


def test_one_oracles_word_or_a_withdrawn_indicator_rotates_nothing(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    lone, withdrawn, stranger = (oracle(chain.settings, "water", i) for i in (3, 2, 1))
    one = _verdicts(chain, "banking", (1,), "key-fingerprint", _fingerprint(lone))
    _publish(chain, one, "key-fingerprint", _fingerprint(lone), sector="banking")  # one verdict: no quorum
    three = _verdicts(chain, "banking", (1, 2, 3), "key-fingerprint", _fingerprint(stranger))
    _publish(chain, three, "key-fingerprint", _fingerprint(stranger), sector="banking",
             by=oracle(chain.settings, "banking", 4))  # a quorum's verdicts, published by an oracle, not the controller
    cites = _verdicts(chain, "banking", (1, 2, 3), "key-fingerprint", _fingerprint(withdrawn))
    _publish(chain, cites, "key-fingerprint", _fingerprint(withdrawn), sector="banking")
    _withdraw(chain, "key-fingerprint", _fingerprint(withdrawn))  # the control room: a false alarm
    for who in (lone, withdrawn, stranger):
        node = _node(chain, who)
        try:
            node.run_once()
            node.run_once()
            node.run_once()
            assert node._key_watch.recounts == 1, "recounted on every turn, not once per event naming the key"
        finally:
            node.close()
        assert int(chain.client.call1("Registry", "oracle", who.address)[3]) == 1


def test_an_expired_indicator_still_retires_the_key_it_named(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """An oracle that was down for the indicator's whole life must not come back signing with that key: an
    indicator expires so that a reassigned address is not blocked for good, and a key is never reassigned."""
    import time
    from datetime import UTC, datetime, timedelta

    chain = fresh_chain
    named = oracle(chain.settings, "water", 1)
    cites = _verdicts(chain, "banking", (2, 3, 4), "key-fingerprint", _fingerprint(named))
    _publish(chain, cites, "key-fingerprint", _fingerprint(named), sector="banking",
             expires=datetime.now(UTC) + timedelta(seconds=1))
    time.sleep(1.5)
    node = _node(chain, named)
    with pytest.raises(KeyRotationOwed, match="names its key"):
        node.run_once()
    node.close()
