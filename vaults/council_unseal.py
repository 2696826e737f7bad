"""A vault unsealed by the governors' council: what such a proposal is, and whose word ends a seal.

**The proposal.** The council (`contracts/GovernanceCouncil.sol`) can only *execute calls*; it records
no ledger event. So a council unseal is a proposal whose meaning is fixed entirely by what the
governors sign (their approvals bind the calls hash, which covers the description):

- exactly one call, to the council itself, of its view ``proposalCount()`` with value 0: a call that
  can neither fail nor change anything, cannot be blocked by anyone (its target is the council, not
  an account a compromised vault could give code to) and, since the council never allowlists a call
  to itself, can never run by the emergency path: a council unseal always waits out the delay
  (unsealing is the direction that opens records; the control room's unseal is the fast one);
- the description ``vault-unseal {"reason": …, "seal": [block, log_index], "vault": …}`` (canonical
  JSON after a fixed prefix), naming the seal it lifts by the position of its ``vault-seal`` event.

**When it counts** (`decide`): when the council contract itself logged ``ProposalExecuted`` for it
(only its ``execute`` emits that, in the transaction that ran the call, after the threshold of
governors approved and the delay ran out), the vault is at that moment sealed by *exactly* the seal
the description names, and the proposal was made after that seal (no unseal is signed in advance
for a seal that does not exist yet, guessing its position). A proposal made against an old seal therefore lifts nothing once the
vault was unsealed and sealed again (a new compromise needs a new decision); a proposal that is only
created, approved or queued lifts nothing; a governor alone cannot create the log. Nothing here
reads the council's counts off its storage: only its logs, filtered on its address.

`qeaims vault verify` counts it only if, in addition, the governors' ML-DSA-65 approvals recount to
the threshold (`chain.council_audit.recount_council`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_utils.crypto import keccak

from keys.council_messages import calls_hash, description_hash

__all__ = [
    "NOOP_SELECTOR",
    "PREFIX",
    "SealFact",
    "SealState",
    "UnsealProposal",
    "decide",
    "parse_unseal",
    "unseal_calldata",
    "unseal_description",
]

PREFIX = "vault-unseal "
NOOP_SELECTOR = keccak(text="proposalCount()")[:4]
MAX_REASON = 400


@dataclass(frozen=True)
class SealState:
    sealed: bool
    reason: str = ""
    block: int = 0  # the block of the event that decided it (0: never sealed)
    by: str = ""  # the controller's address, or "council:<proposal id>"
    log_index: int = 0
    proposal: int = 0  # the council proposal that unsealed it (0: none)

    @property
    def position(self) -> tuple[int, int]:
        return (self.block, self.log_index)


@dataclass(frozen=True)
class UnsealProposal:
    vault: str
    seal: tuple[int, int]  # (block, log index) of the vault-seal event it lifts
    reason: str


@dataclass(frozen=True)
class SealFact:
    """One thing the chain says about a vault's seal, at its log position.

    ``kind`` is ``seal`` (a ``vault-seal`` event; ``counts``: its recorder held REPAIR_ROLE there) or
    ``council`` (a council unseal executed; ``counts``: the caller's checks of it passed)."""

    block: int
    log_index: int
    kind: str
    by: str
    counts: bool
    sealed: bool = False
    reason: str = ""
    proposal: int = 0
    seal: tuple[int, int] = (0, 0)
    created: tuple[int, int] = (0, 0)  # where the council logged the proposal (ProposalCreated)


def unseal_description(vault: str, seal: tuple[int, int], reason: str) -> str:
    body = {"reason": reason.strip()[:MAX_REASON], "seal": [int(seal[0]), int(seal[1])], "vault": vault}
    return PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def unseal_calldata() -> bytes:
    return bytes(NOOP_SELECTOR)


def parse_unseal(council: str, targets: Sequence[str], values: Sequence[int], calldatas: Sequence[bytes],
                 description: str, logged_hash: bytes) -> UnsealProposal | None:
    """The unseal a proposal's logged calls make, or None if they are anything else (module docstring):
    one no-op self-call, the canonical description, and calls that hash to the logged hash."""
    if (len(targets), len(values), len(calldatas)) != (1, 1, 1) or str(targets[0]).lower() != council.lower():
        return None
    if int(values[0]) != 0 or bytes(calldatas[0]) != NOOP_SELECTOR or not description.startswith(PREFIX):
        return None
    try:
        body = json.loads(description[len(PREFIX):])
        vault, seal, reason = body["vault"], body["seal"], body["reason"]
        position = (int(seal[0]), int(seal[1]))
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    if not isinstance(vault, str) or not isinstance(reason, str) or len(seal) != 2 or set(body) != {
            "reason", "seal", "vault"}:
        return None
    if unseal_description(vault, position, reason) != description:  # canonical only: one text per decision
        return None
    if calls_hash(list(targets), list(values), [bytes(c) for c in calldatas], description_hash(description)) \
            != bytes(logged_hash):
        return None
    return UnsealProposal(vault, position, reason)


def decide(facts: Iterable[SealFact]) -> tuple[SealState, list[SealFact]]:
    """The seal state after ``facts`` (any order; walked in chain order), and the council unseals that were
    executed but lifted nothing (stale: the vault was not sealed by the seal they name)."""
    state = SealState(False)
    stale: list[SealFact] = []
    for fact in sorted(facts, key=lambda f: (f.block, f.log_index)):
        if not fact.counts:
            continue
        if fact.kind == "seal":
            state = SealState(fact.sealed, fact.reason, fact.block, fact.by, fact.log_index)
        elif fact.kind == "council":
            if state.sealed and state.position == fact.seal and fact.created > fact.seal:
                state = SealState(False, fact.reason, fact.block, fact.by, fact.log_index, fact.proposal)
            else:
                stale.append(fact)
    return state, stale
