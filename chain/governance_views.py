"""Council proposals as rows, and the overrides' calls: what `qeaims gov` prints and the API returns.

The rows read the chain (the council's state, approvals, eta, stored hash) and the proposal's own
`ProposalCreated` log (its calls; the council keeps only their hash), so a reader sees what will run,
not what someone says will run. `override_calls` builds the calls of the three storm-day overrides
(`STORM_OVERRIDES`) exactly as `qeaims gov propose force-isolate|force-reintegrate|set-cap` sends them.

Here, below `qeaims`, because the command and the API (`api/routers/governance.py`) share them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from eth_abi.exceptions import DecodingError

from chain.client import ChainClient
from chain.council_audit import council_approvals
from chain.governance import STATES, Call, Council
from chain.logs import DEFAULT_MAX_LOGS_RANGE
from keys.errors import InvalidName
from keys.ids import from_bytes32, to_bytes32

__all__ = ["CONTRACTS", "OVERRIDES", "ApprovalCount", "Override", "OverrideKind", "approval_count", "decoded_call",
           "override_calls", "proposal_row", "proposal_rows", "valid_approvals"]

CONTRACTS = ("Registry", "EventLedger", "IsolationQuorum", "GovernanceCouncil")

OverrideKind = Literal["force-isolate", "force-reintegrate", "set-cap"]
OVERRIDES: tuple[OverrideKind, ...] = ("force-isolate", "force-reintegrate", "set-cap")

_STATES = tuple(state.lower() for state in STATES)


@dataclass(frozen=True)
class Override:
    """An override's calls and the description a proposal gets when the proposer gives none."""

    calls: list[Call]
    description: str


def override_calls(kind: OverrideKind, *, node: str | None = None, reason: str = "override",
                   basis_points: int | None = None) -> Override:
    """The calls of one override: `force-isolate`/`force-reintegrate` a node (the reason goes on-chain as a
    bytes32 name), or `set-cap` the share of a sector's nodes the quorum may isolate at once (basis points)."""
    if kind == "set-cap":
        if basis_points is None:
            raise ValueError("set-cap needs basis_points")
        return Override([("IsolationQuorum", "setIsolationCap", [basis_points])],
                        f"set isolation cap to {basis_points / 100:.2f}%")
    if node is None:
        raise ValueError(f"{kind} needs a node")
    function, verb = ("forceIsolate", "isolate") if kind == "force-isolate" else ("forceReintegrate", "reintegrate")
    return Override([("IsolationQuorum", function, [to_bytes32(node), to_bytes32(reason)])],
                    f"override: {verb} {node} ({reason})")


def _names(client: ChainClient) -> dict[str, str]:
    return {client.address(name).lower(): name for name in CONTRACTS}


def _readable(value: Any) -> Any:
    """Arguments as JSON: a bytes32 that is a name as that name, other bytes as hex, lists element-wise."""
    if isinstance(value, bytes):
        if len(value) == 32:
            try:
                return from_bytes32(value)
            except InvalidName:
                pass
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_readable(v) for v in value]
    return value


def decoded_call(client: ChainClient, target: str, data: bytes) -> dict[str, Any]:
    """One logged call decoded with its target's ABI: {contract, function, args, undecodable}; function None
    when the target is not one of ours or the selector is not one of its functions, and also when the
    selector is one of ours but its arguments do not decode (`undecodable` True: truncated or malformed
    calldata, which the call would revert on; shown as such, never an error, so a proposal cannot hide
    what it does from the governors asked to approve it)."""
    contract = _names(client).get(target.lower())
    try:
        decoded = client.abi(contract).decode_call(data) if contract is not None else None
    except (DecodingError, ValueError, OverflowError):
        return {"contract": contract, "function": None, "args": {}, "undecodable": True}
    if decoded is None:
        return {"contract": contract or target, "function": None, "args": {}, "undecodable": False}
    function, args = decoded
    return {"contract": contract, "function": function, "args": {k: _readable(v) for k, v in args.items()},
            "undecodable": False}


def proposal_row(client: ChainClient, proposal: int, *, max_logs_range: int = DEFAULT_MAX_LOGS_RANGE) -> dict[str, Any]:
    """`qeaims gov show`: a proposal's calls (from its log), whether they hash to what the council stores,
    its state, approvals (the contract's count) and eta."""
    council = Council(client, max_logs_range=max_logs_range)
    calls = council.proposal(proposal)
    names = _names(client)
    call_rows = [{"target": names.get(t.lower(), t), "value": v, "selector": "0x" + d[:4].hex(), "bytes": len(d),
                  "emergency_allowed": len(d) >= 4 and bool(client.call1("GovernanceCouncil", "isEmergencyCall", t,
                                                                           d[:4]))}
                 for t, v, d in zip(calls.targets, calls.values, calls.calldatas, strict=True)]
    return {
        "id": proposal,
        "proposer": calls.proposer,
        "description": calls.description,
        "state": council.state(proposal).lower(),
        "approvals": int(client.call1("GovernanceCouncil", "approvals", proposal)),
        "eta": council.eta(proposal),
        "calls_hash": "0x" + calls.calls_hash.hex(),
        "hash_matches": calls.recomputed_hash() == council.stored_hash(proposal),
        "calls": call_rows,
    }


def proposal_rows(client: ChainClient, db: sqlite3.Connection) -> list[dict[str, Any]]:
    """`qeaims gov list`: every proposal with its state and approvals (from the council) and its proposer,
    number of calls and description (from its `ProposalCreated` log in the index `db`, synced by the caller)."""
    count = int(client.call1("GovernanceCouncil", "proposalCount"))
    descriptions: dict[int, dict[str, Any]] = {}
    for (args,) in db.execute("SELECT args FROM logs WHERE contract = 'GovernanceCouncil' "
                              "AND event = 'ProposalCreated'"):
        data = json.loads(args)
        descriptions[int(data["proposalId"])] = data
    rows = []
    for pid in range(1, count + 1):
        rows.append({
            "id": pid,
            "state": _STATES[int(client.call1("GovernanceCouncil", "proposalState", pid))],
            "approvals": int(client.call1("GovernanceCouncil", "approvals", pid)),
            "proposer": descriptions.get(pid, {}).get("proposer"),
            "calls": len(descriptions.get(pid, {}).get("targets", [])),
            "description": descriptions.get(pid, {}).get("description", ""),
        })
    return rows


def valid_approvals(db: sqlite3.Connection, client: ChainClient, proposal: int) -> int:
    """The approvals of `proposal` the auditor's recount counts (`chain.council_audit.council_approvals`):
    ML-DSA-65 signatures that verify over the recomputed calls hash, from governors still in the membership
    they approved in. `db` is an index synced to the head by the caller."""
    checks = council_approvals(db, client.chain_id, client.address("GovernanceCouncil")).get(proposal, [])
    return sum(1 for check in checks if check.counts)


@dataclass(frozen=True)
class ApprovalCount:
    """A proposal's approvals as the recount counts them beside what acting on it needs."""

    proposal: int
    valid: int  # the recount's count (ML-DSA verified, current governors)
    counted: int  # the contract's count (secp256k1 transactions only)
    required: int  # threshold(), or emergencyThreshold() for an emergency execution
    emergency: bool

    @property
    def enough(self) -> bool:
        return self.valid >= self.required

    def refusal(self) -> str:
        needs = f"an emergency execution needs {self.required}" if self.emergency else \
            f"the council needs {self.required}"
        return (f"proposal {self.proposal} has {self.valid} valid ML-DSA approvals of current governors (the council "
                f"counts {self.counted}); {needs}; nothing was sent")


def approval_count(db: sqlite3.Connection, client: ChainClient, proposal: int, *,
                   emergency: bool = False) -> ApprovalCount:
    """What `qeaims gov execute|emergency` and the API's execute, queue and emergency check before sending.

    The council counts an approval on its secp256k1 transaction: the EVM cannot check ML-DSA-65, so a
    governor whose classical key alone was taken could fill the threshold with approvals whose ML-DSA
    signatures do not verify. The recount can; acting is refused while its count is below the threshold
    (below `emergencyThreshold()` for an emergency), whatever the contract's own count, so a forged
    approval landing between this check and the transaction helps nobody."""
    required = int(client.call1("GovernanceCouncil", "emergencyThreshold" if emergency else "threshold"))
    return ApprovalCount(proposal=proposal, valid=valid_approvals(db, client, proposal),
                         counted=int(client.call1("GovernanceCouncil", "approvals", proposal)), required=required,
                         emergency=emergency)
