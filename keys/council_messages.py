"""The exact bytes a governor's ML-DSA-65 key signs for the governance council.

Same construction as :mod:`keys.messages`: a NUL-terminated ASCII domain tag, then the
``abi.encode`` of the fields, signed under its own ML-DSA context string, so a council signature
never verifies as a batch, registration, rotation or quorum vote and vice versa.

- A **governor key** proof of possession, logged in ``GovernorAdded``:
  ``GOVERNOR_KEY_DOMAIN || abi.encode(uint256 chainId, address council, address account,
  uint32 keyEpoch, bytes32 keyHash)`` under ``GOVERNOR_KEY_CONTEXT``.
- An **approval** (the proposer's included), logged in ``ProposalApproved``:
  ``APPROVAL_DOMAIN || abi.encode(uint256 chainId, address council, uint256 proposalId,
  bytes32 callsHash, address governor, uint32 keyEpoch)`` under ``APPROVAL_CONTEXT``.

``callsHash`` is the council's ``hashProposal``: ``keccak256(abi.encode(address[] targets,
uint256[] values, bytes[] calldatas, bytes32 keccak256(description)))`` (OpenZeppelin Governor's).
Do not change a byte without bumping the ``v1`` tags.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi.abi import encode as abi_encode

from keys._abi import address_word, bytes32_word, checksum, keccak256, uint_word
from keys.identity import HybridIdentity, pq_key_hash, verify_pq

__all__ = [
    "APPROVAL_CONTEXT",
    "APPROVAL_DOMAIN",
    "GOVERNOR_KEY_CONTEXT",
    "GOVERNOR_KEY_DOMAIN",
    "approval_message",
    "calls_hash",
    "description_hash",
    "governor_key_message",
    "sign_approval",
    "sign_governor_key",
    "verify_approval",
    "verify_governor_key",
]

APPROVAL_CONTEXT = b"qeaims-council-approval-v1"
GOVERNOR_KEY_CONTEXT = b"qeaims-council-governor-key-v1"
APPROVAL_DOMAIN = b"QEAIMS/v1/council-approval\x00"
GOVERNOR_KEY_DOMAIN = b"QEAIMS/v1/council-governor-key\x00"


def description_hash(description: str) -> bytes:
    """keccak256 of the description's UTF-8 bytes, as ``keccak256(bytes(description))`` in Solidity."""
    return keccak256(description.encode("utf-8"))


def calls_hash(targets: Sequence[str], values: Sequence[int], calldatas: Sequence[bytes], desc_hash: bytes) -> bytes:
    """The council's ``hashProposal(targets, values, calldatas, descriptionHash)``."""
    encoded = abi_encode(
        ["address[]", "uint256[]", "bytes[]", "bytes32"],
        [[checksum(t, "target") for t in targets], list(values), [bytes(c) for c in calldatas],
         bytes32_word(desc_hash, "description hash")],
    )
    return keccak256(encoded)


def approval_message(
    *, chain_id: int, council: str, proposal_id: int, calls_hash: bytes, governor: str, key_epoch: int
) -> bytes:
    """What a governor signs to approve (or propose) a council proposal."""
    return APPROVAL_DOMAIN + b"".join((
        uint_word(chain_id, 256, "chain id"),
        address_word(council, "council address"),
        uint_word(proposal_id, 256, "proposal id"),
        bytes32_word(calls_hash, "calls hash"),
        address_word(governor, "governor address"),
        uint_word(key_epoch, 32, "key epoch"),
    ))


def governor_key_message(*, chain_id: int, council: str, account: str, key_epoch: int, key_hash: bytes) -> bytes:
    """What a governor's new ML-DSA key signs to prove possession when the council adds it."""
    return GOVERNOR_KEY_DOMAIN + b"".join((
        uint_word(chain_id, 256, "chain id"),
        address_word(council, "council address"),
        address_word(account, "governor address"),
        uint_word(key_epoch, 32, "key epoch"),
        bytes32_word(key_hash, "ML-DSA key hash"),
    ))


def sign_approval(
    identity: HybridIdentity, *, chain_id: int, council: str, proposal_id: int, calls_hash: bytes, key_epoch: int
) -> bytes:
    """The governor's ML-DSA-65 signature over :func:`approval_message` (3309 bytes).

    ``key_epoch`` is the council's epoch for this governor (``governorKey``), which is not the
    registry's oracle epoch carried by the identity.
    """
    message = approval_message(chain_id=chain_id, council=council, proposal_id=proposal_id,
                               calls_hash=calls_hash, governor=identity.address, key_epoch=key_epoch)
    return identity.sign_pq(message, APPROVAL_CONTEXT)


def verify_approval(
    public_key: bytes, signature: bytes, *, chain_id: int, council: str, proposal_id: int, calls_hash: bytes,
    governor: str, key_epoch: int,
) -> bool:
    message = approval_message(chain_id=chain_id, council=council, proposal_id=proposal_id,
                               calls_hash=calls_hash, governor=governor, key_epoch=key_epoch)
    return verify_pq(public_key, signature, message, APPROVAL_CONTEXT)


def sign_governor_key(identity: HybridIdentity, *, chain_id: int, council: str, key_epoch: int) -> bytes:
    """Proof of possession of the identity's ML-DSA key for its council membership at ``key_epoch``."""
    message = governor_key_message(chain_id=chain_id, council=council, account=identity.address,
                                   key_epoch=key_epoch, key_hash=identity.pq_key_hash)
    return identity.sign_pq(message, GOVERNOR_KEY_CONTEXT)


def verify_governor_key(
    public_key: bytes, proof: bytes, *, chain_id: int, council: str, account: str, key_epoch: int
) -> bool:
    try:
        key_hash = pq_key_hash(public_key)
    except ValueError:
        return False
    message = governor_key_message(chain_id=chain_id, council=council, account=account, key_epoch=key_epoch,
                                   key_hash=key_hash)
    return verify_pq(public_key, proof, message, GOVERNOR_KEY_CONTEXT)
