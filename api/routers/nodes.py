"""`GET /nodes`, `GET /nodes/{node}`: the registry's nodes and each one's lifecycle, as the chain says.

A node's status is the registry's (Active, Isolated, Repairing), replayed from the API's own index
(`chain.registry_history`), never a local belief; its timeline is every status it went through with
the block that changed it and what in that transaction did (a quorum's proposal executing, a council
override, a repair beginning), so an operator can see *why* a pump is out of service.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel

from api.auth import Principal, require, require_sector
from api.deps import Db
from api.errors import ErrorBody
from api.routers._ops import Cursor, Limit, Page, at_time, history, name_of, page, readable_sectors, tx_of
from chain.registry_history import NODE_STATUS, NodeState, Position, RegistryHistory
from keys.errors import KeysError
from keys.ids import to_bytes32

router = APIRouter(tags=["nodes"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

Reader = Annotated[Principal, Depends(require("auditor", "operator", "governor"))]
NodeStatus = Literal["active", "isolated", "repairing"]
NODE_PATTERN = r"^(0x[0-9a-fA-F]{64}|[ -~]{1,32})$"


class NodeSummary(BaseModel):
    node: str  # the name the registry holds (bytes32 as text)
    id: str  # 0x + 64 hex: the bytes32 on-chain
    sector: str
    kind: str
    criticality: int
    depends_on: list[str]  # the nodes it needs (the registry's NodeAdded)
    status: str
    status_epoch: int
    added_block: int
    since_block: int  # the block of the latest status change (the NodeAdded one when none)
    since: datetime | None


class NodeList(Page):
    items: list[NodeSummary]


class NodeStep(BaseModel):
    """One state of the node's lifecycle, from the log that began it."""

    block: int
    log_index: int
    time: datetime | None
    tx: str | None
    status: str
    status_epoch: int
    cause: str  # what in that transaction changed it


class NodeDetail(NodeSummary):
    timeline: list[NodeStep]


def _depends(db: Db) -> dict[str, list[str]]:
    """Each node's dependencies as the registry logged them when it was added."""
    out: dict[str, list[str]] = {}
    for node, needs in db.execute("SELECT json_extract(args, '$.node'), json_extract(args, '$.dependsOn') FROM logs "
                                  "WHERE contract = 'Registry' AND event = 'NodeAdded'"):
        out[str(node).lower()] = [name_of(str(d)) for d in json.loads(needs or "[]")]
    return out


def _summary(node: str, steps: list[tuple[Position, NodeState]], times: dict[Position, int | None],
             depends: dict[str, list[str]]) -> NodeSummary:
    (added, _), (since, now) = steps[0], steps[-1]
    return NodeSummary(node=name_of(node), id=node, sector=name_of(now.sector), kind=name_of(now.kind),
                       criticality=now.criticality, depends_on=depends.get(node, []), status=now.status_name, status_epoch=now.status_epoch,
                       added_block=added[0], since_block=since[0], since=at_time(times.get(since)))


def _times(db: Db, positions: list[Position]) -> dict[Position, int | None]:
    if not positions:
        return {}
    blocks = sorted({b for b, _ in positions})
    marks = ",".join("?" * len(blocks))
    by_block = {int(b): (None if t is None else int(t)) for b, t in
                db.execute(f"SELECT block, MAX(timestamp) FROM logs WHERE block IN ({marks}) GROUP BY block", blocks)}
    return {p: by_block.get(p[0]) for p in positions}


@router.get("/nodes", response_model=NodeList, summary="The registry's nodes and their on-chain status",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def list_nodes(who: Reader, db: Db,
               sector: Annotated[str | None, Query(max_length=32, description="a sector's name")] = None,
               state: Annotated[NodeStatus | None, Query(alias="status", description="only nodes in this status")]
               = None,
               limit: Limit = 100, cursor: Cursor = None) -> NodeList:
    replayed = history(db)
    wanted = readable_sectors(who, sector)
    rows: list[tuple[str, list[tuple[Position, NodeState]]]] = []
    for node in replayed.nodes():
        steps = replayed.node_timeline(node)
        if not steps or not wanted(name_of(steps[-1][1].sector)):
            continue
        if state is not None and steps[-1][1].status_name != state:
            continue
        rows.append((node, steps))
    rows.sort(key=lambda row: row[1][0][0])
    chosen, after = page(rows, lambda row: row[1][0][0], limit, cursor)
    times = _times(db, [steps[-1][0] for _, steps in chosen])
    depends = _depends(db) if chosen else {}
    return NodeList(items=[_summary(node, steps, times, depends) for node, steps in chosen], next_cursor=after)


def _node_key(node: str) -> str:
    if node.startswith("0x") and len(node) == 66:
        return node.lower()
    try:
        return "0x" + to_bytes32(node).hex()
    except KeysError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"node: {exc}") from None


_CAUSES = ("ProposalExecuted", "GovernanceOverride", "RepairStarted", "NodeAdded")


def _cause(db: Db, tx: str | None, node: str) -> str:
    """What in the transaction that changed the node's status did it (first match, in log order)."""
    if tx is None:
        return "unknown"
    marks = ",".join("?" * len(_CAUSES))
    for contract, event, args in db.execute(
            f"SELECT contract, event, args FROM logs WHERE tx_hash = ? AND event IN ({marks}) ORDER BY log_index",
            (tx, *_CAUSES)):
        body = json.loads(args)
        if event == "ProposalExecuted" and str(body.get("target", "")).lower() == node:
            return f"isolation quorum: proposal {body.get('proposalId')} executed"
        if event == "GovernanceOverride" and str(body.get("node", "")).lower() == node:
            return f"council override ({name_of(str(body.get('reason', '0x' + '00' * 32)))})"
        if event == "RepairStarted" and str(body.get("node", "")).lower() == node:
            return f"repair begun by {body.get('by')}"
        if event == "NodeAdded" and contract == "Registry":
            return "added to the registry"
    return "registry status change"


def node_detail(db: Db, replayed: RegistryHistory, node: str) -> NodeDetail | None:
    key = _node_key(node)
    steps = replayed.node_timeline(key)
    if not steps:
        return None
    positions = [p for p, _ in steps]
    times = _times(db, positions)
    timeline = []
    for position, state in steps:
        tx = tx_of(db, position)
        timeline.append(NodeStep(block=position[0], log_index=position[1], time=at_time(times.get(position)), tx=tx,
                                 status=NODE_STATUS.get(state.status, str(state.status)),
                                 status_epoch=state.status_epoch, cause=_cause(db, tx, key)))
    return NodeDetail(**_summary(key, steps, times, _depends(db)).model_dump(), timeline=timeline)


@router.get("/nodes/{node}", response_model=NodeDetail, summary="One node: its status and its whole lifecycle",
            responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def get_node(who: Reader, db: Db,
             node: Annotated[str, Path(pattern=NODE_PATTERN, description="the node's name or its 0x bytes32")]
             ) -> NodeDetail:
    found = node_detail(db, history(db), node)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"the registry has no node {node[:66]!r}")
    require_sector(who, found.sector)
    return found
