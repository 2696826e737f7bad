"""`GET /isolations`, `GET /isolations/{id}`: the isolation quorum's proposals and every vote, judged.

The contract counts a vote on its secp256k1 transaction; a vote *is* a vote only when its ML-DSA-65
signature verifies under the voter's key of the epoch it names, from an oracle Active in the sector
(docs/TRUST.md). The API shows each vote with that judgement, from the same replay the audit's
recount uses (`chain.quorum_audit.proposals`), so the dashboard and `qeaims audit verify` cannot
disagree. The quorum has no vote *against*: an oracle signs the ballot or does not; `votes_for`
counts the genuine votes the contract's tally counts (`counts_now`: for a proposal not yet executed,
a voter quarantined after voting no longer counts, as in the contract), `votes_not_counted` the VoteCast
logs that are no vote at all; `required` is what the tally needs (for a proposal not yet executed,
max(captured requirement, q(current membership)), as the contract takes it). Every proposal is listed
(isolate, reintegrate, and the quarantine of an oracle), `action` says which.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Annotated, Literal

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel

from api.auth import Principal, require, require_sector
from api.deps import Ctx, Db
from api.errors import ErrorBody
from api.routers._ops import Cursor, Limit, Page, at_time, history, meta, name_of, page, readable_sectors
from chain.manifest import load_deployment
from chain.quorum_audit import ProposalRecord, proposals
from core.errors import DeploymentMissing
from core.kinds import kind_name
from keys.errors import KeysError
from keys.ids import split_event_id

router = APIRouter(tags=["isolations"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

Reader = Annotated[Principal, Depends(require("auditor", "operator", "governor"))]
Action = Literal["isolate", "reintegrate", "quarantine"]
State = Literal["open", "executed", "expired", "closed"]


class IsolationSummary(BaseModel):
    id: int
    action: str
    target: str  # the node's name, or the oracle's address for a quarantine
    sector: str
    state: str  # open | executed | expired | closed (the contract's rule, on the replay)
    votes_for: int  # genuine votes the contract's tally counts (voters still Active, same status epoch)
    votes_not_counted: int  # VoteCast logs that are no vote (signature, key epoch, voter)
    required: int | None  # executed: the quorum captured when it opened; else max(captured, q(members now))
    membership: int | None
    opened_block: int
    opened: datetime | None
    deadline: datetime
    executed_block: int | None
    executed: datetime | None
    blocked: str | None  # why a reached quorum did not execute
    findings: list[str]  # what the audit's recount finds wrong with this proposal


class IsolationList(Page):
    items: list[IsolationSummary]


class IsolationVote(BaseModel):
    oracle: str
    choice: Literal["for"]  # the only vote the contract knows
    valid: bool  # a genuine vote when it was cast (signature, key epoch, an Active voter of the sector)
    counts_now: bool  # the contract's tally counts it (its voter still Active, in the status epoch it voted in)
    why_not: str | None
    key_epoch: int
    block: int
    log_index: int
    time: datetime | None
    tx: str


class IsolationEvidence(BaseModel):
    """An event the proposer cited: the verdict the proposal rests on."""

    oracle: str
    seq: int
    kind: str | None  # None when the index holds no such event
    block: int | None


class IsolationDetail(IsolationSummary):
    proposer: str
    reason: str
    status_epoch: int | None
    round: int | None
    opened_tx: str
    executed_tx: str | None
    evidence: list[IsolationEvidence]
    votes: list[IsolationVote]


def _target(record: ProposalRecord) -> str:
    if record.action == "quarantine":
        return to_checksum_address("0x" + record.target[12:].hex())
    return name_of(record.target)


def _summary(record: ProposalRecord) -> IsolationSummary:
    return IsolationSummary(
        id=record.proposal_id, action=record.action, target=_target(record), sector=name_of(record.sector),
        state=record.state, votes_for=record.votes_counting, votes_not_counted=record.votes_invalid,
        required=record.required, membership=record.membership, opened_block=record.opened[0],
        opened=at_time(record.opened_at), deadline=datetime.fromtimestamp(record.deadline, UTC),
        executed_block=None if record.executed is None else record.executed[0], executed=at_time(record.executed_at),
        blocked=record.blocked, findings=list(record.problems))


def _records(ctx: Ctx, db: sqlite3.Connection) -> list[ProposalRecord]:
    """Every proposal, replayed; "expired" is judged against the later of the wall clock and the last
    indexed block's time (a chain whose clock was moved ahead, as tests do, stays consistent)."""
    try:
        quorum = load_deployment(ctx.settings.manifest_path).isolation_quorum
    except (OSError, ValueError, DeploymentMissing):
        raise DeploymentMissing("no deployment manifest here: deploy the contracts first (`qeaims up`)") from None
    chain_id = meta(db, "chain_id")
    row = db.execute("SELECT MAX(timestamp) FROM logs").fetchone()
    now = max(int(time.time()), int(row[0] or 0))
    return proposals(db, history(db), int(chain_id) if chain_id else 0, quorum, now=now)


@router.get("/isolations", response_model=IsolationList, summary="The isolation quorum's proposals and their tallies",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}})
def list_isolations(who: Reader, ctx: Ctx, db: Db,
                    sector: Annotated[str | None, Query(max_length=32, description="a sector's name")] = None,
                    action: Annotated[Action | None, Query(description="only this action")] = None,
                    state: Annotated[State | None, Query(description="only proposals in this state")] = None,
                    limit: Limit = 100, cursor: Cursor = None) -> IsolationList:
    wanted = readable_sectors(who, sector)
    rows = [r for r in _records(ctx, db) if wanted(name_of(r.sector)) and (action is None or r.action == action)
            and (state is None or r.state == state)]
    chosen, after = page(rows, lambda r: r.opened, limit, cursor)
    return IsolationList(items=[_summary(r) for r in chosen], next_cursor=after)


def _evidence(db: sqlite3.Connection, ids: tuple[bytes, ...]) -> list[IsolationEvidence]:
    out = []
    for raw in ids:
        try:
            oracle, seq = split_event_id(raw)
        except KeysError:
            continue
        row = db.execute("SELECT kind, block FROM events WHERE oracle = ? AND seq = ?", (oracle.lower(), seq)).fetchone()
        out.append(IsolationEvidence(oracle=oracle, seq=seq, kind=None if row is None else kind_name(int(row[0])),
                            block=None if row is None else int(row[1])))
    return out


@router.get("/isolations/{proposal_id}", response_model=IsolationDetail,
            summary="One proposal: its ballot, cited evidence and every vote with its validity",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}})
def get_isolation(who: Reader, ctx: Ctx, db: Db,
                  proposal_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="the proposal's id")]
                  ) -> IsolationDetail:
    found = next((r for r in _records(ctx, db) if r.proposal_id == proposal_id), None)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"there is no isolation proposal {proposal_id}")
    require_sector(who, name_of(found.sector))
    votes = [IsolationVote(oracle=to_checksum_address(v.voter), choice="for", valid=v.valid, counts_now=v.counts_now, why_not=v.reason,
                      key_epoch=v.key_epoch, block=v.block, log_index=v.log_index, time=at_time(v.timestamp), tx=v.tx)
             for v in found.votes]
    reason = name_of(found.reason) if any(found.reason) else ""
    return IsolationDetail(**_summary(found).model_dump(), proposer=to_checksum_address(found.proposer)
                          if found.proposer else "", reason=reason, status_epoch=found.status_epoch, round=found.round,
                          opened_tx=found.opened_tx, executed_tx=found.executed_tx,
                          evidence=_evidence(db, found.evidence), votes=votes)
