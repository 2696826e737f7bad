"""One chain of its own with a small operations history, shared (read-only) by the operations API's tests.

Built once per test process by `ops_city(request, tmp_path_factory)` and stopped when the session ends,
so the nodes, oracles, isolations and intel tests pay for one Anvil and one history, not four. The
history is made with the helpers the chain tests already use (`tests.support`, `tests.chain.test_indicators`),
through the real contracts:

- pump-1: isolated by water's quorum (three genuine votes), repair begun, reintegrated by the quorum;
- pump-2: a proposal still open, with one genuine vote and one whose ML-DSA-65 signature is random bytes;
- electricity-4: a key-fingerprint indicator (banking's quorum) names its key, then it rotates (epoch 2);
- electricity-3: quarantined by electricity's quorum;
- indicators: one in force, one withdrawn, one expired, one published by an oracle without REPAIR_ROLE;
- a quarantine-device countermeasure of water following the indicator in force.
Nothing here is left for another test to see: the chain is this module's alone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from chain.deploy import controller_keystore, dev_controller, oracle_keystore
from chain.node import stop_anvil
from chain.quorum import VOTE_GAS, Action, QuorumClient
from chain.recorder import canonical_payload
from chain.rotation import key_fingerprint, rotate_oracle_key
from core.indicator_values import indicator_id
from core.kinds import kind_by_name
from keys.ids import to_bytes32
from keys.keystore import load_keystore
from tests.api.conftest import Tokens, make_tokens
from tests.chain.test_indicators import NOW, _publish, _verdicts, _withdraw
from tests.conftest import Chain, make_chain
from tests.support import isolate_by_quorum, oracle, recorder


@dataclass(frozen=True)
class OpsCity:
    chain: Chain
    client: TestClient
    tokens: Tokens
    isolation: int  # pump-1's executed isolation
    reintegration: int
    open_proposal: int  # pump-2's, with a forged vote
    forged_voter: str  # checksummed
    quarantine: int
    quarantined: str  # electricity-3's address (checksummed)
    rotated: str  # electricity-4's address
    old_fingerprint: str  # electricity-4's key at epoch 1
    in_force: str  # indicator ids
    withdrawn: str
    expired: str
    countermeasure: str


_city: OpsCity | None = None


def ops_city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> OpsCity:
    """The shared city (built on first use in this process, its Anvil stopped at the session's end)."""
    global _city
    if _city is None:
        chain = make_chain(tmp_path_factory.mktemp("api-ops") / "home")
        def stop() -> None:
            stop_anvil(chain.settings)

        request.config.add_cleanup(stop)
        _city = _history(chain)
    return _city


def _history(chain: Chain) -> OpsCity:
    settings = chain.settings
    quorum = QuorumClient(chain.client)
    water = [oracle(settings, "water", i) for i in range(1, 5)]
    pump = to_bytes32("pump-1")
    isolation = isolate_by_quorum(chain, "water", "pump-1", "pump-1")
    controller = load_keystore(controller_keystore(settings), settings.passphrase)
    chain.client.transact(controller.account, "IsolationQuorum", "beginRepair", pump)
    back = quorum.propose(water[3], Action.REINTEGRATE, pump, to_bytes32("nominal"))
    quorum.vote(water[1], back)
    quorum.vote(water[0], back)

    open_proposal = quorum.propose(water[0], Action.ISOLATE, to_bytes32("pump-2"), to_bytes32("leak"))
    chain.client.transact(water[2].account, "IsolationQuorum", "vote", open_proposal, 1, os.urandom(3309),
                          gas=VOTE_GAS)  # water-3's secp256k1 key without its ML-DSA key: no vote

    named = oracle(settings, "electricity", 4)
    old = key_fingerprint(named.pq_public_key)
    _publish(chain, _verdicts(chain, "banking", (1, 2, 3), "key-fingerprint", old), "key-fingerprint", old,
             sector="banking")
    rotate_oracle_key(chain.client, oracle_keystore(settings, "electricity", 4), settings.passphrase)
    elec = [oracle(settings, "electricity", i) for i in range(1, 5)]  # electricity-4 now at key epoch 2
    target = bytes(12) + bytes.fromhex(elec[2].address[2:])
    quarantine = quorum.propose(elec[0], Action.QUARANTINE, target, to_bytes32("bad ML-DSA signature"))
    quorum.vote(elec[1], quarantine)
    quorum.vote(elec[3], quarantine)

    _publish(chain, _verdicts(chain, "water", (1, 2, 3), "source-address", "10.66.0.1"), "source-address", "10.66.0.1")
    _publish(chain, _verdicts(chain, "water", (1, 2, 3), "source-address", "10.66.0.2"), "source-address", "10.66.0.2")
    _withdraw(chain, "source-address", "10.66.0.2")
    soon = NOW + timedelta(seconds=1)
    _publish(chain, _verdicts(chain, "water", (1, 2, 3), "source-address", "10.66.0.3"), "source-address", "10.66.0.3",
             expires=soon)
    _publish(chain, _verdicts(chain, "water", (1, 2, 3), "client-id", "eng-ws-9"), "client-id", "eng-ws-9",
             by=water[3])  # water-4 holds no REPAIR_ROLE: counts for nothing
    in_force = indicator_id("source-address", "10.66.0.1")
    measure = {"state": "applied", "id": "cm-water-plc-7", "type": "quarantine-device", "sector": "water",
               "device": "plc-7", "indicator": in_force, "reason": "commands from 10.66.0.1"}
    recorder(chain.client, settings, dev_controller(settings)).record(
        kind_by_name("countermeasure"), to_bytes32("water"), canonical_payload(measure))
    while datetime.now(UTC) <= soon:  # the third indicator has expired by the time anyone reads it
        time.sleep(0.1)

    app = create_app(settings, follow=False)
    app.state.ctx.sync()
    tokens = make_tokens(settings.home / "api")
    return OpsCity(chain=chain, client=TestClient(app, raise_server_exceptions=False), tokens=tokens,
                   isolation=isolation, reintegration=back, open_proposal=open_proposal, forged_voter=water[2].address,
                   quarantine=quarantine, quarantined=elec[2].address, rotated=named.address, old_fingerprint=old,
                   in_force=in_force, withdrawn=indicator_id("source-address", "10.66.0.2"),
                   expired=indicator_id("source-address", "10.66.0.3"), countermeasure="cm-water-plc-7")


def home_of(city: OpsCity) -> Path:
    return city.chain.settings.home
