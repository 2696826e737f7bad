"""`/governance/proposals`: the council's proposals read from the chain, and the overrides a governor acts on.

Reading (auditor, governor): each proposal's state, approvals and eta from the council, its calls from
its own `ProposalCreated` log, decoded with the target's ABI, and every standing approval with its
ML-DSA-65 check as the auditor's recount makes it (`chain.council_audit.council_approvals`).

Acting (governor only): propose a storm-day override (force-isolate, force-reintegrate, set-cap),
approve, queue, execute, or execute in an emergency (threshold + 1 approvals, allowlisted calls, a reason
on-chain). Queue, execute and emergency are refused (409, nothing sent) while the approvals the recount
counts (ML-DSA-65 signatures that verify, from current governors: `valid_approvals` in the detail) are
below what the council needs: the contract counts secp256k1 approvals only
(`chain.governance_views.approval_count`, which `qeaims gov execute|emergency` checks too). Each action goes through `chain.governance.Council` exactly as `qeaims gov`
does (same calls: `chain.governance_views.override_calls`; same simulation before proposing; same
ML-DSA-signed approval over the calls hash recomputed from the log), signed with the token's governor's
own keystore (`keystores/governors/<name>.json`) unlocked by the passphrase sent in the body: a token
alone reads but cannot act. A wrong passphrase is a 403 and nothing is sent; a refusal by the council
(executing before the threshold or the delay, approving twice) is a 409 naming the contract's error,
raised by gas estimation before any transaction leaves, so the chain is unchanged. The passphrase is
never logged, echoed or kept.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from api.auth import Principal, require
from api.deps import Ctx
from api.errors import ErrorBody
from chain.client import ChainClient
from chain.connect import connect
from chain.council_audit import council_approvals, recount_council
from chain.governance import Council
from chain.governance_views import (
    OverrideKind,
    approval_count,
    decoded_call,
    override_calls,
    proposal_row,
    proposal_rows,
)
from keys.errors import KeystoreCorrupt, KeystoreError, KeystoreNotFound, WrongPassphrase
from keys.identity import HybridIdentity
from keys.ids import to_bytes32
from keys.keystore import load_keystore

__all__ = ["router"]

router = APIRouter(tags=["governance"])

_READ = require("auditor", "governor")
_ACT = require("governor")
_ACTING = threading.Lock()  # one governor transaction at a time from this process (nonces)
_NAME = re.compile(r"^[\x20-\x7e]{1,32}\Z")  # a bytes32 name: 1-32 printable ASCII characters
_GOVERNOR = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")  # a keystore's file name, never a path
_READ_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                                                 503: {"model": ErrorBody}}
_ACT_ERRORS: dict[int | str, dict[str, Any]] = {**_READ_ERRORS, 404: {"model": ErrorBody}, 409: {"model": ErrorBody},
                                                422: {"model": ErrorBody}}


class ProposalSummary(BaseModel):
    id: int
    state: str
    approvals: int = Field(description="approvals the council counts")
    proposer: str | None
    calls: int
    description: str


class ProposalPage(BaseModel):
    items: list[ProposalSummary]
    next_cursor: str | None


class CallOut(BaseModel):
    target: str = Field(description="the contract's name, or the address when it is not one of ours")
    function: str | None = Field(description="the function called, decoded from the selector (null when it is "
                                             "not one of the target's, or its arguments do not decode)")
    undecodable: bool = Field(description="the selector is one of the target's functions but the arguments do not "
                                          "decode (malformed calldata: the call would revert)")
    args: dict[str, Any] = Field(description="its arguments by name (bytes32 names as text)")
    selector: str
    value: int
    bytes: int
    emergency_allowed: bool


class ApprovalOut(BaseModel):
    governor: str
    key_epoch: int
    signature_ok: bool = Field(description="its ML-DSA-65 signature verifies over the recomputed calls hash")
    counts: bool = Field(description="it verifies and its governor is still a governor, in the same membership")
    block: int
    tx_hash: str


class ProposalDetail(BaseModel):
    id: int
    proposer: str
    description: str
    state: str
    approvals: int = Field(description="approvals the council counts")
    valid_approvals: int = Field(description="approvals the auditor's recount counts")
    threshold: int
    eta: int = Field(description="unix time from which it may execute (0: not queued)")
    eta_utc: str | None
    calls_hash: str
    hash_matches: bool = Field(description="the logged calls hash to what the council stores")
    calls: list[CallOut]
    approval_checks: list[ApprovalOut]
    problems: list[str] = Field(description="the recount's findings about this proposal")


def _name(value: str | None, what: str) -> str | None:
    if value is not None and not _NAME.match(value):
        raise ValueError(f"{what} must be 1 to 32 printable ASCII characters (it goes on-chain as a bytes32)")
    return value


class Passphrase(BaseModel):
    passphrase: SecretStr = Field(description="unlocks the token's governor's keystore; never stored or echoed")


class ProposeIn(Passphrase):
    kind: OverrideKind
    node: str | None = Field(default=None, description="force-isolate / force-reintegrate: the node")
    sector: str | None = Field(default=None, description="optional: the node must be registered in this sector")
    cap: int | None = Field(default=None, ge=1, le=10_000, description="set-cap: basis points of a sector's nodes")
    reason: str = Field(default="override", description="on-chain, 1-32 printable ASCII characters")
    description: str | None = Field(default=None, max_length=280)

    @field_validator("node", "sector", "reason")
    @classmethod
    def _bytes32(cls, value: str | None, info: Any) -> str | None:
        return _name(value, info.field_name)

    @model_validator(mode="after")
    def _complete(self) -> ProposeIn:
        if self.kind == "set-cap":
            if self.cap is None or self.node is not None:
                raise ValueError("set-cap takes cap (basis points) and no node")
        elif self.node is None or self.cap is not None:
            raise ValueError(f"{self.kind} takes node and no cap")
        return self


def _governor(ctx: Ctx, who: Principal, passphrase: SecretStr) -> HybridIdentity:
    """The token's governor's identity, unlocked here; 403 in one sentence when it cannot be."""
    if who.governor is None or not _GOVERNOR.match(who.governor):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this token names no governor keystore this server "
                                                              "can open; nothing was sent")
    path = ctx.settings.keystore_dir / "governors" / f"{who.governor}.json"
    try:
        return load_keystore(path, passphrase.get_secret_value())
    except KeystoreNotFound:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"governor {who.governor} has no keystore on this server; nothing was sent") from None
    except WrongPassphrase:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"wrong passphrase for governor {who.governor}'s keystore; nothing was sent") from None
    except KeystoreCorrupt as exc:  # its reason, never the server's path
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"governor {who.governor}'s keystore on this server is "
                                                              f"unusable ({exc.reason}); nothing was sent") from None
    except KeystoreError:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"governor {who.governor}'s keystore on this server "
                                                              "cannot be read; nothing was sent") from None


def _known(client: ChainClient, proposal: int) -> None:
    if not 1 <= proposal <= int(client.call1("GovernanceCouncil", "proposalCount")):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no council proposal {proposal}")


def _detail(ctx: Ctx, client: ChainClient, proposal: int) -> ProposalDetail:
    _known(client, proposal)
    row = proposal_row(client, proposal, max_logs_range=ctx.settings.max_logs_range)
    logged = Council(client, max_logs_range=ctx.settings.max_logs_range).proposal(proposal)
    calls = [CallOut(**{**decoded_call(client, t, d), "target": shown["target"]},
                     **{k: shown[k] for k in ("selector", "value", "bytes", "emergency_allowed")})
             for t, d, shown in zip(logged.targets, logged.calldatas, row["calls"], strict=True)]
    council = client.address("GovernanceCouncil")
    with ctx.read() as db:
        checks = council_approvals(db, client.chain_id, council).get(proposal, [])
        problems = [str(f["detail"]) for f in recount_council(db, client.chain_id, council)
                    if f.get("proposal_id") == proposal and not f["ok"]]
    eta = int(row["eta"])
    return ProposalDetail(
        id=proposal, proposer=row["proposer"], description=row["description"], state=row["state"],
        approvals=row["approvals"], valid_approvals=sum(1 for c in checks if c.counts),
        threshold=int(client.call1("GovernanceCouncil", "threshold")), eta=eta,
        eta_utc=datetime.fromtimestamp(eta, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if eta else None,
        calls_hash=row["calls_hash"], hash_matches=row["hash_matches"], calls=calls,
        approval_checks=[ApprovalOut(governor=to_checksum_address(c.governor), key_epoch=c.key_epoch, signature_ok=c.signature_ok,
                                     counts=c.counts, block=c.block, tx_hash=c.tx_hash) for c in checks],
        problems=problems)


ProposalId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the council's proposal id")]


@router.get("/governance/proposals", response_model=ProposalPage, summary="Council proposals, newest first",
            responses={**_READ_ERRORS, 422: {"model": ErrorBody}})
def list_proposals(
    ctx: Ctx, _: Annotated[Principal, Depends(_READ)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{0,17}$", description="next_cursor of the last page")] = None,
) -> ProposalPage:
    client, _deployment = ctx.chain()
    ctx.sync()
    with ctx.read() as db:
        rows = proposal_rows(client, db)
    rows = [r for r in reversed(rows) if cursor is None or r["id"] < int(cursor)]
    page = rows[:limit]
    return ProposalPage(items=[ProposalSummary(**r) for r in page],
                        next_cursor=str(page[-1]["id"]) if len(rows) > limit else None)


@router.get("/governance/proposals/{proposal}", response_model=ProposalDetail,
            summary="One proposal: its decoded calls, state, eta and each approval's ML-DSA check",
            responses={**_READ_ERRORS, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def show_proposal(proposal: ProposalId, ctx: Ctx, _: Annotated[Principal, Depends(_READ)]) -> ProposalDetail:
    client, _deployment = ctx.chain()
    ctx.sync()
    return _detail(ctx, client, proposal)


@router.post("/governance/proposals", response_model=ProposalDetail, status_code=status.HTTP_201_CREATED,
             summary="Propose an override (force-isolate, force-reintegrate, set-cap); the proposer approves it",
             responses=_ACT_ERRORS)
def propose(body: ProposeIn, ctx: Ctx, who: Annotated[Principal, Depends(_ACT)]) -> ProposalDetail:
    governor = _governor(ctx, who, body.passphrase)
    client, _deployment = connect(ctx.settings)  # a client of its own: nonces read afresh (the CLI may have sent)
    if body.sector is not None and body.node is not None:
        registered = bytes(client.call1("Registry", "node", to_bytes32(body.node))[0])
        if registered != to_bytes32(body.sector):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                detail=f"node {body.node} is not registered in sector {body.sector}; nothing was sent")
    override = override_calls(body.kind, node=body.node, reason=body.reason, basis_points=body.cap)
    council = Council(client, max_logs_range=ctx.settings.max_logs_range)
    with _ACTING:
        council.simulate(override.calls)  # a proposal that could never execute is refused here, with the reason
        proposal = council.propose(governor, override.calls, body.description or override.description)
    ctx.sync()
    return _detail(ctx, client, proposal)


class EmergencyIn(Passphrase):
    reason: str = Field(min_length=1, max_length=280, description="why the delay cannot be waited out (on-chain)")


def _act(ctx: Ctx, who: Principal, body: Passphrase, proposal: int, action: str) -> ProposalDetail:
    governor = _governor(ctx, who, body.passphrase)
    client, _deployment = connect(ctx.settings)
    _known(client, proposal)
    council = Council(client, max_logs_range=ctx.settings.max_logs_range)
    with _ACTING:
        if action != "approve":  # execute, queue, emergency: only on approvals the recount counts
            ctx.sync()
            with ctx.read() as db:
                count = approval_count(db, client, proposal, emergency=action == "emergency")
            if not count.enough:
                raise HTTPException(status.HTTP_409_CONFLICT, detail=count.refusal())
        if action == "approve":
            council.approve(governor, proposal)
        elif action == "queue":
            council.queue(governor, proposal)
        elif isinstance(body, EmergencyIn):
            council.execute_emergency(governor, proposal, body.reason)
        else:
            council.execute(governor, proposal)
    ctx.sync()
    return _detail(ctx, client, proposal)


@router.post("/governance/proposals/{proposal}/approve", response_model=ProposalDetail,
             summary="Approve as the token's governor (ML-DSA-signed over the calls hash read from the log)",
             responses=_ACT_ERRORS)
def approve(proposal: ProposalId, body: Passphrase, ctx: Ctx,
            who: Annotated[Principal, Depends(_ACT)]) -> ProposalDetail:
    return _act(ctx, who, body, proposal, "approve")


@router.post("/governance/proposals/{proposal}/queue", response_model=ProposalDetail,
             summary="Queue a proposal at the threshold (after a change of the council)", responses=_ACT_ERRORS)
def queue(proposal: ProposalId, body: Passphrase, ctx: Ctx,
          who: Annotated[Principal, Depends(_ACT)]) -> ProposalDetail:
    return _act(ctx, who, body, proposal, "queue")


@router.post("/governance/proposals/{proposal}/execute", response_model=ProposalDetail,
             summary="Execute a proposal whose delay has passed (409 naming the council's error otherwise)",
             responses=_ACT_ERRORS)
def execute(proposal: ProposalId, body: Passphrase, ctx: Ctx,
            who: Annotated[Principal, Depends(_ACT)]) -> ProposalDetail:
    return _act(ctx, who, body, proposal, "execute")


@router.post("/governance/proposals/{proposal}/emergency", response_model=ProposalDetail,
             summary="Execute without the delay: threshold + 1 approvals and allowlisted calls only (409 otherwise)",
             responses=_ACT_ERRORS)
def emergency(proposal: ProposalId, body: EmergencyIn, ctx: Ctx,
              who: Annotated[Principal, Depends(_ACT)]) -> ProposalDetail:
    return _act(ctx, who, body, proposal, "emergency")
