"""The isolation rule on a real chain: 2f+1 distinct active oracles of the node's sector."""

from __future__ import annotations

import pytest

from chain.consortium import SECTORS
from chain.governance import Council
from chain.quorum import Action, QuorumClient
from keys.ids import event_id, to_bytes32
from qeaims.errors import ContractRejected
from tests.support import governor, oracle


def test_two_of_four_votes_do_not_isolate_three_do(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    quorum = QuorumClient(chain.client)
    water = [oracle(chain.settings, "water", i) for i in range(1, 5)]
    node = to_bytes32("pump-1")
    evidence = [event_id(water[0].address, 1)]
    pid = quorum.propose(water[0].account, Action.ISOLATE, node, to_bytes32("pressure collapse"), evidence)
    quorum.vote(water[1].account, pid)
    view = quorum.view(pid)
    assert (view.active_votes, view.required, view.state) == (2, 3, "open")
    assert quorum.node_status(node) == "active"
    with pytest.raises(ContractRejected) as twice:
        quorum.vote(water[1].account, pid)
    assert twice.value.error == "QuorumAlreadyVoted"
    quorum.vote(water[2].account, pid)
    assert quorum.view(pid).state == "executed"
    assert quorum.node_status(node) == "isolated"


def test_other_sectors_cannot_vote(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    quorum = QuorumClient(chain.client)
    water1 = oracle(chain.settings, "water", 1)
    pid = quorum.propose(water1.account, Action.ISOLATE, to_bytes32("pump-2"), to_bytes32("leak"))
    for index in (1, 2):
        with pytest.raises(ContractRejected) as rejected:
            quorum.vote(oracle(chain.settings, "electricity", index).account, pid)
        assert rejected.value.error == "QuorumNotSectorOracle"
    assert quorum.node_status(to_bytes32("pump-2")) == "active"


def test_quarantined_oracles_votes_stop_counting_and_cap_holds(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    quorum = QuorumClient(chain.client)
    elec = [oracle(chain.settings, "electricity", i) for i in range(1, 5)]
    # three honest oracles quarantine the fourth (evidence would be its bad ML-DSA signature)
    target = bytes(12) + bytes.fromhex(elec[3].address[2:])
    q = quorum.propose(elec[0].account, Action.QUARANTINE, target, to_bytes32("bad ML-DSA signature"))
    with pytest.raises(ContractRejected) as self_vote:
        quorum.vote(elec[3].account, q)
    assert self_vote.value.error == "QuorumSelfQuarantineVote"
    quorum.vote(elec[1].account, q)
    quorum.vote(elec[2].account, q)
    assert quorum.view(q).state == "executed"
    assert int(chain.client.call1("Registry", "oracle", elec[3].address)[4]) == 2  # quarantined
    # n = 3 active oracles now: f = floor((3-1)/3) = 0, so 2f+1 = 1 vote decides
    assert chain.client.call1("IsolationQuorum", "requiredVotes", to_bytes32("electricity")) == 1
    with pytest.raises(ContractRejected) as quarantined:
        quorum.propose(elec[3].account, Action.ISOLATE, to_bytes32("feeder-1"), to_bytes32("byzantine"))
    assert quarantined.value.error == "QuorumNotSectorOracle"
    # cap: 25 % of 4 feeders → one isolated at a time by quorum
    quorum.propose(elec[0].account, Action.ISOLATE, to_bytes32("feeder-1"), to_bytes32("line fault"))
    assert quorum.node_status(to_bytes32("feeder-1")) == "isolated"
    second = quorum.propose(elec[1].account, Action.ISOLATE, to_bytes32("feeder-2"), to_bytes32("line fault"))
    assert quorum.view(second).state == "open"
    assert quorum.node_status(to_bytes32("feeder-2")) == "active"
    # governance may override the cap, and the override is recorded as such
    governors = [governor(chain.settings, s).account for s in SECTORS]
    receipt_id = Council(chain.client, governors).pass_proposal(
        [("IsolationQuorum", "forceIsolate", [to_bytes32("feeder-2"), to_bytes32("storm override")])], "override")
    assert receipt_id > 0
    assert quorum.node_status(to_bytes32("feeder-2")) == "isolated"
