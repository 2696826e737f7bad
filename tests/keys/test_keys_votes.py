"""Post-quantum quorum votes: the signed message is exactly the ABI encoding the contract logs the
ballot in, and a signature moved to any other chain, contract, voter, key epoch or ballot fails."""

from __future__ import annotations

import dataclasses

import pytest
from eth_abi.abi import encode

from keys.errors import InvalidInput
from keys.hybrid import Ballot, sign_vote, verify_vote
from keys.identity import HybridIdentity
from keys.messages import VOTE_DOMAIN, vote_message

QUORUM = "0x" + "ab" * 20
TARGET = b"pump-1".ljust(32, b"\0")


def test_vote_message_is_the_abi_encoding_of_the_ballot() -> None:
    voter = "0x" + "cd" * 20
    message = vote_message(chain_id=31337, quorum=QUORUM, voter=voter, key_epoch=2, action=1, target=TARGET,
                           status_epoch=7, round_=3)
    expected = encode(["uint256", "address", "address", "uint32", "uint8", "bytes32", "uint64", "uint32"],
                      [31337, QUORUM, voter, 2, 1, TARGET, 7, 3])
    assert message == VOTE_DOMAIN + expected
    with pytest.raises(InvalidInput):
        vote_message(chain_id=1, quorum=QUORUM, voter=voter, key_epoch=1, action=3, target=TARGET, status_epoch=1,
                     round_=1)


def test_a_vote_verifies_only_for_its_own_ballot_voter_epoch_and_contract() -> None:
    identity = HybridIdentity.generate(key_epoch=2)
    ballot = Ballot(action=0, target=TARGET, status_epoch=4, round=2)
    signature = sign_vote(identity, ballot, chain_id=31337, quorum=QUORUM)
    good = {"chain_id": 31337, "quorum": QUORUM, "voter": identity.address, "key_epoch": 2}
    assert verify_vote(identity.pq_public_key, signature, ballot, **good)  # type: ignore[arg-type]
    for change in ({"chain_id": 1}, {"quorum": "0x" + "ee" * 20}, {"voter": "0x" + "cd" * 20}, {"key_epoch": 1}):
        assert not verify_vote(identity.pq_public_key, signature, ballot, **{**good, **change})  # type: ignore[arg-type]
    for field, value in (("action", 2), ("target", b"pump-2".ljust(32, b"\0")), ("status_epoch", 3), ("round", 1)):
        moved = dataclasses.replace(ballot, **{field: value})
        assert not verify_vote(identity.pq_public_key, signature, moved, **good)  # type: ignore[arg-type]
    other = HybridIdentity.generate(key_epoch=2)
    assert not verify_vote(other.pq_public_key, signature, ballot, **good)  # type: ignore[arg-type]
    assert not verify_vote(identity.pq_public_key, signature[:-1], ballot, **good)  # type: ignore[arg-type]
