"""`GET /oracles`, `GET /oracles/{address}`: the sectors' oracles, their keys, rotations and quarantines.

Each oracle as the registry's logs replay it (`chain.registry_history`): its sector, status and key
epoch. A key is shown by its fingerprint (SHA-256 of the ML-DSA-65 public key, as a `key-fingerprint`
indicator names it) and whether its chain of trust holds (`chain.audit_keys`: registration proof of
possession, every rotation signed by the old key and the new): a key epoch that does not verify makes
every vote under it no vote. A rotation says whether it answered an indicator that named the key it
retired (`chain.rotation.rotations_on_indicators`), and a key still named and not yet rotated is shown
as owed. Quarantines are the registry's status changes to and from Quarantined, with what did each.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Annotated

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel

from api.auth import Principal, require, require_sector
from api.deps import Db
from api.errors import ErrorBody
from api.routers._ops import (
    Cursor,
    Limit,
    Page,
    at_time,
    history,
    meta,
    name_of,
    page,
    readable_sectors,
    tx_of,
)
from chain.audit_keys import KeyEpoch, key_history
from chain.indicators import indicator_records
from chain.registry_history import ORACLE_STATUS, OracleState, Position
from chain.rotation import KeyAnswer, key_fingerprint, rotations_on_indicators

router = APIRouter(tags=["oracles"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

Reader = Annotated[Principal, Depends(require("auditor", "operator", "governor"))]
_QUARANTINED = 2


class OracleSummary(BaseModel):
    address: str  # checksummed
    sector: str
    operator: str
    status: str  # active | quarantined | removed
    quarantined: bool
    key_epoch: int
    key_fingerprint: str | None  # SHA-256 hex of the current ML-DSA-65 public key (None if the index lacks it)
    key_trusted: bool  # the current key's chain of trust verifies
    registered_block: int


class OracleList(Page):
    items: list[OracleSummary]


class OracleKey(BaseModel):
    epoch: int
    fingerprint: str
    block: int
    log_index: int
    time: datetime | None
    trusted: bool
    why_not: str | None
    named_by_indicator: str | None  # a counting key-fingerprint indicator named this key while it was in use
    rotated_block: int | None  # the rotation that retired it after it was named


class OracleRotation(BaseModel):
    from_epoch: int
    to_epoch: int
    block: int
    log_index: int
    time: datetime | None
    tx: str | None
    answers_indicator: str | None  # the indicator that named the retired key, when this rotation followed it


class OracleStatusChange(BaseModel):
    block: int
    log_index: int
    time: datetime | None
    tx: str | None
    status: str
    status_epoch: int
    cause: str


class OracleDetail(OracleSummary):
    keys: list[OracleKey]
    rotations: list[OracleRotation]
    rotation_owed: bool  # a counting indicator names the current key: the oracle must rotate before signing
    quarantines: list[OracleStatusChange]  # to and from Quarantined, oldest first


def _keys(db: sqlite3.Connection) -> dict[str, dict[int, KeyEpoch]]:
    chain_id = meta(db, "chain_id")
    return key_history(db, int(chain_id) if chain_id else 0, meta(db, "registry"))


def _summary(account: str, steps: list[tuple[Position, OracleState]], keys: dict[int, KeyEpoch]) -> OracleSummary:
    now = steps[-1][1]
    key = keys.get(now.key_epoch)
    return OracleSummary(address=to_checksum_address(account), sector=name_of(now.sector),
                         operator=name_of(now.operator), status=now.status_name,
                         quarantined=now.status == _QUARANTINED, key_epoch=now.key_epoch,
                         key_fingerprint=None if key is None else key_fingerprint(key.public_key),
                         key_trusted=key is not None and key.valid, registered_block=steps[0][0][0])


@router.get("/oracles", response_model=OracleList, summary="The sectors' oracles: status, key epoch and fingerprint",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def list_oracles(who: Reader, db: Db,
                 sector: Annotated[str | None, Query(max_length=32, description="a sector's name")] = None,
                 quarantined: Annotated[bool | None, Query(description="only (not) quarantined oracles")] = None,
                 limit: Limit = 100, cursor: Cursor = None) -> OracleList:
    replayed = history(db)
    wanted = readable_sectors(who, sector)
    rows = []
    for account in replayed.oracles():
        steps = replayed.oracle_timeline(account)
        if not steps or not wanted(name_of(steps[-1][1].sector)):
            continue
        if quarantined is not None and (steps[-1][1].status == _QUARANTINED) != quarantined:
            continue
        rows.append((account, steps))
    rows.sort(key=lambda row: row[1][0][0])
    chosen, after = page(rows, lambda row: row[1][0][0], limit, cursor)
    keys = _keys(db) if chosen else {}
    return OracleList(items=[_summary(a, steps, keys.get(a, {})) for a, steps in chosen], next_cursor=after)


def _cause(db: sqlite3.Connection, tx: str | None) -> str:
    if tx is None:
        return "unknown"
    for contract, event, args in db.execute(
            "SELECT contract, event, args FROM logs WHERE tx_hash = ? AND event IN ('ProposalExecuted', "
            "'EmergencyExecuted') ORDER BY log_index", (tx,)):
        pid = json.loads(args).get("proposalId")
        if contract == "IsolationQuorum":
            return f"isolation quorum: proposal {pid} executed"
        if contract == "GovernanceCouncil":
            return "council: emergency call" if event == "EmergencyExecuted" else f"council: proposal {pid} executed"
    return "registry status change"


def _time(db: sqlite3.Connection, position: Position) -> datetime | None:
    row = db.execute("SELECT timestamp FROM logs WHERE block = ? AND log_index = ?", position).fetchone()
    return None if row is None else at_time(row[0])


def oracle_detail(db: sqlite3.Connection, address: str) -> OracleDetail | None:
    replayed = history(db)
    account = address.lower()
    steps = replayed.oracle_timeline(account)
    if not steps:
        return None
    epochs = _keys(db).get(account, {})
    named = rotations_on_indicators(db, indicator_records(db, replayed))
    answers: dict[int, KeyAnswer] = {a.epoch: a for a in named if a.oracle.lower() == account}
    keys = []
    for epoch, key in sorted(epochs.items()):
        answer = answers.get(epoch)
        keys.append(OracleKey(epoch=epoch, fingerprint=key_fingerprint(key.public_key), block=key.position[0],
                              log_index=key.position[1], time=_time(db, key.position), trusted=key.valid,
                              why_not=key.reason or None, named_by_indicator=None if answer is None else answer.indicator,
                              rotated_block=None if answer is None or answer.rotated is None else answer.rotated[0]))
    rotations = []
    quarantines = []
    previous: OracleState | None = None
    for position, state in steps:
        if previous is not None and state.key_epoch != previous.key_epoch:
            retired = answers.get(previous.key_epoch)
            rotations.append(OracleRotation(
                from_epoch=previous.key_epoch, to_epoch=state.key_epoch, block=position[0], log_index=position[1],
                time=_time(db, position), tx=tx_of(db, position),
                answers_indicator=retired.indicator if retired is not None and retired.rotated == position else None))
        if previous is not None and state.status != previous.status and _QUARANTINED in (state.status, previous.status):
            tx = tx_of(db, position)
            quarantines.append(OracleStatusChange(block=position[0], log_index=position[1], time=_time(db, position), tx=tx,
                                            status=ORACLE_STATUS.get(state.status, str(state.status)),
                                            status_epoch=state.status_epoch, cause=_cause(db, tx)))
        previous = state
    now = steps[-1][1]
    owed = answers.get(now.key_epoch)
    return OracleDetail(**_summary(account, steps, epochs).model_dump(), keys=keys, rotations=rotations,
                        rotation_owed=owed is not None and owed.rotated is None, quarantines=quarantines)


@router.get("/oracles/{address}", response_model=OracleDetail,
            summary="One oracle: its keys, rotations (and the indicators they answered) and quarantines",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def get_oracle(who: Reader, db: Db,
               address: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$", description="the oracle's address")]
               ) -> OracleDetail:
    found = oracle_detail(db, address)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"the registry has no oracle {address}")
    require_sector(who, found.sector)
    return found
