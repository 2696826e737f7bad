"""The isolation rule on a real chain: a Byzantine quorum of the sector's membership (docs/TRUST.md)."""

from __future__ import annotations

import pytest

from chain.consortium import SECTORS
from chain.governance import Council
from chain.quorum import Action, QuorumClient
from core.errors import ContractRejected
from keys.ids import event_id, to_bytes32
from tests.support import governor, oracle


def test_two_of_four_votes_do_not_isolate_three_do(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    quorum = QuorumClient(chain.client)
    water = [oracle(chain.settings, "water", i) for i in range(1, 5)]
    node = to_bytes32("pump-1")
    evidence = [event_id(water[0].address, 1)]
    pid = quorum.propose(water[0], Action.ISOLATE, node, to_bytes32("pressure collapse"), evidence)
    quorum.vote(water[1], pid)
    view = quorum.view(pid)
    assert (view.active_votes, view.required, view.state) == (2, 3, "open")
    assert quorum.node_status(node) == "active"
    with pytest.raises(ContractRejected) as twice:
        quorum.vote(water[1], pid)
    assert twice.value.error == "QuorumAlreadyVoted"
    quorum.vote(water[2], pid)
    assert quorum.view(pid).state == "executed"
    assert quorum.node_status(node) == "isolated"


def test_other_sectors_cannot_vote(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    quorum = QuorumClient(chain.client)
    water1 = oracle(chain.settings, "water", 1)
    pid = quorum.propose(water1, Action.ISOLATE, to_bytes32("pump-2"), to_bytes32("leak"))
    for index in (1, 2):
        with pytest.raises(ContractRejected) as rejected:
            quorum.vote(oracle(chain.settings, "electricity", index), pid)
        assert rejected.value.error == "QuorumNotSectorOracle"
    assert quorum.node_status(to_bytes32("pump-2")) == "active"


def test_quarantined_oracles_votes_stop_counting_and_cap_holds(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    quorum = QuorumClient(chain.client)
    elec = [oracle(chain.settings, "electricity", i) for i in range(1, 5)]
    # three honest oracles quarantine the fourth (evidence would be its bad ML-DSA signature)
    target = bytes(12) + bytes.fromhex(elec[3].address[2:])
    q = quorum.propose(elec[0], Action.QUARANTINE, target, to_bytes32("bad ML-DSA signature"))
    with pytest.raises(ContractRejected) as self_vote:
        quorum.vote(elec[3], q)
    assert self_vote.value.error == "QuorumSelfQuarantineVote"
    quorum.vote(elec[1], q)
    quorum.vote(elec[2], q)
    assert quorum.view(q).state == "executed"
    assert int(chain.client.call1("Registry", "oracle", elec[3].address)[4]) == 2  # quarantined
    # the membership is still 4 (a quarantine never shrinks it), so the requirement stays 3 of 4:
    # one Byzantine oracle cannot now decide alone (issue 13, class 1)
    assert chain.client.call1("IsolationQuorum", "requiredVotes", to_bytes32("electricity")) == 3
    with pytest.raises(ContractRejected) as quarantined:
        quorum.propose(elec[3], Action.ISOLATE, to_bytes32("feeder-1"), to_bytes32("byzantine"))
    assert quarantined.value.error == "QuorumNotSectorOracle"
    alone = quorum.propose(elec[0], Action.ISOLATE, to_bytes32("feeder-1"), to_bytes32("byzantine alone"))
    assert quorum.view(alone).active_votes == 1
    assert quorum.node_status(to_bytes32("feeder-1")) == "active"
    # cap: 25 % of 4 feeders → one isolated at a time by quorum
    quorum.vote(elec[1], alone)
    quorum.vote(elec[2], alone)
    assert quorum.node_status(to_bytes32("feeder-1")) == "isolated"
    second = quorum.propose(elec[1], Action.ISOLATE, to_bytes32("feeder-2"), to_bytes32("line fault"))
    quorum.vote(elec[0], second)
    quorum.vote(elec[2], second)
    assert quorum.view(second).state == "open"
    assert quorum.node_status(to_bytes32("feeder-2")) == "active"
    # governance may override the cap, and the override is recorded as such
    governors = [governor(chain.settings, s) for s in SECTORS]
    receipt_id = Council(chain.client, governors).pass_proposal(
        [("IsolationQuorum", "forceIsolate", [to_bytes32("feeder-2"), to_bytes32("storm override")])], "override")
    assert receipt_id > 0
    assert quorum.node_status(to_bytes32("feeder-2")) == "isolated"


def test_a_stale_ballot_is_signed_again_and_an_earlier_cycles_votes_never_count(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """Class 3 on a real chain: two votes on pump-1, then governance isolates and returns it; the old
    proposal is closed, a third vote on it is refused, and the next round starts from zero votes."""
    chain = fresh_chain
    quorum = QuorumClient(chain.client)
    water = [oracle(chain.settings, "water", i) for i in range(1, 5)]
    node = to_bytes32("pump-1")
    first = quorum.propose(water[0], Action.ISOLATE, node, to_bytes32("leak"))
    quorum.vote(water[1], first)
    council = Council(chain.client, [governor(chain.settings, s) for s in SECTORS])
    council.pass_proposal([("IsolationQuorum", "forceIsolate", [node, to_bytes32("manual")])], "manual isolation")
    council.pass_proposal([("IsolationQuorum", "forceReintegrate", [node, to_bytes32("checked")])], "back")
    assert quorum.view(first).state == "closed"
    with pytest.raises(ContractRejected) as closed:
        quorum.vote(water[2], first)
    assert closed.value.error == "QuorumWrongState"
    second = quorum.propose(water[2], Action.ISOLATE, node, to_bytes32("leak again"))
    view = quorum.view(second)
    assert (view.round, view.status_epoch, view.active_votes) == (2, 3, 1)  # isolated, then back: two changes
    assert quorum.node_status(node) == "active"
