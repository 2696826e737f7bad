"""The Registry's (and the quorum's roles') whole history, replayed from the indexer's `logs` table.

An auditor recounts a decision against the registry *as it was* when the decision was taken: which
oracles were members of the sector when a proposal opened, which voters were still Active at their
vote, who held REPAIR_ROLE when a sensor quarantine was recorded. `RegistryHistory.from_db(db)`
replays, in chain order, every

- Registry log that changes membership or status: SectorAdded, OperatorAdded, OracleRegistered,
  OracleStatusChanged, KeyRotated, NodeAdded, NodeStatusChanged;
- RoleGranted / RoleRevoked of the Registry and the IsolationQuorum (OpenZeppelin AccessControl),

and answers questions *at a position* ``(block, log_index)``: the state after every replayed log at
a position ≤ that one (so a log at exactly that position counts; pass ``(block, log_index - 1)``
for "just before"). Each entity keeps a timeline (positions, states) that is answered by bisection,
so thousands of questions (one per vote of every proposal) stay cheap.

Events are read by argument *name*, never by position, so both shapes of the status events work:
without and with the trailing ``statusEpoch`` (docs/TRUST.md). Without it, the epoch is counted
here as the contract counts it: 1 at registration, +1 per status change.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from eth_utils.crypto import keccak

__all__ = [
    "NODE_STATUS",
    "ORACLE_STATUS",
    "REPAIR_ROLE",
    "NodeState",
    "OracleState",
    "Position",
    "RegistryHistory",
    "quorum_size",
    "sector_key",
]

Position = tuple[int, int]  # (block, log_index)

ORACLE_STATUS = {0: "none", 1: "active", 2: "quarantined", 3: "removed"}
NODE_STATUS = {0: "none", 1: "active", 2: "isolated", 3: "repairing"}
ACTIVE, QUARANTINED = 1, 2

REPAIR_ROLE = "0x" + keccak(text="REPAIR_ROLE").hex()

REGISTRY_EVENTS = ("SectorAdded", "OperatorAdded", "OracleRegistered", "OracleStatusChanged", "KeyRotated",
                   "NodeAdded", "NodeStatusChanged")
ROLE_EVENTS = ("RoleGranted", "RoleRevoked")
FLOOR_EVENT = "ActiveFloorChanged"  # IsolationQuorum: the fewest Active oracles a sector must have to decide
_BULKY = ("$.pqPublicKey", "$.popSignature", "$.newPublicKey", "$.oldKeySignature", "$.newKeySignature")


def quorum_size(n: int) -> int:
    """docs/TRUST.md: q(n) = ⌊(n+f)/2⌋ + 1 with f = ⌊(n−1)/3⌋, n = Active + Quarantined members.
    A sector without members can decide nothing: its requirement is unreachable (a huge number)."""
    if n <= 0:
        return 1 << 32
    f = (n - 1) // 3
    return (n + f) // 2 + 1


def _hex32(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def sector_key(sector: str | bytes) -> str:
    """A sector as the logs store it (``0x`` + 64 hex): accepts a name (``"water"``), raw bytes32 or hex."""
    if isinstance(sector, bytes):
        return "0x" + sector.hex()
    if sector.startswith("0x") and len(sector) == 66:
        return sector.lower()
    raw = sector.encode()
    if not raw or len(raw) > 32:
        raise ValueError(f"not a sector id: {sector!r}")
    return "0x" + raw.ljust(32, b"\0").hex()


def _addr(value: Any) -> str:
    return str(value).lower()


@dataclass(frozen=True)
class OracleState:
    sector: str  # 0x + 64 hex
    operator: str
    status: int  # ORACLE_STATUS
    key_epoch: int
    key_hash: str  # 0x + 64 hex: keccak of the current ML-DSA public key
    status_epoch: int

    @property
    def status_name(self) -> str:
        return ORACLE_STATUS.get(self.status, str(self.status))


@dataclass(frozen=True)
class NodeState:
    sector: str
    kind: str
    criticality: int
    status: int  # NODE_STATUS
    status_epoch: int

    @property
    def status_name(self) -> str:
        return NODE_STATUS.get(self.status, str(self.status))


T = TypeVar("T")


class _Timeline(Generic[T]):
    """Positions in increasing order and the state from each position on."""

    __slots__ = ("positions", "states")

    def __init__(self) -> None:
        self.positions: list[Position] = []
        self.states: list[T] = []

    def add(self, position: Position, state: T) -> None:
        if self.positions and self.positions[-1] == position:
            self.states[-1] = state  # two changes at one position: the last one stands
        else:
            self.positions.append(position)
            self.states.append(state)

    def at(self, position: Position) -> T | None:
        i = bisect.bisect_right(self.positions, position) - 1
        return self.states[i] if i >= 0 else None

    @property
    def last(self) -> T | None:
        return self.states[-1] if self.states else None


@dataclass(frozen=True)
class HistoryProblem:
    position: Position
    tx: str
    message: str


class RegistryHistory:
    """Registry state and role holders at any position of the chain, replayed from logs alone."""

    def __init__(self) -> None:
        self._oracles: dict[str, _Timeline[OracleState]] = {}
        self._nodes: dict[str, _Timeline[NodeState]] = {}
        self._members: dict[str, _Timeline[tuple[frozenset[str], frozenset[str]]]] = {}  # (members, active)
        self._roles: dict[tuple[str, str, str], _Timeline[bool]] = {}
        self._floor: _Timeline[int] = _Timeline()
        self.sectors: dict[str, Position] = {}
        self.operators: dict[str, tuple[str, Position]] = {}
        self.problems: list[HistoryProblem] = []  # logs that make no sense in the order they came
        self.last_position: Position = (-1, -1)

    # --- building ------------------------------------------------------------------------------

    @classmethod
    def from_db(cls, db: sqlite3.Connection) -> RegistryHistory:
        events = (*REGISTRY_EVENTS, *ROLE_EVENTS, FLOOR_EVENT)
        marks = ",".join("?" * len(events))
        rows = db.execute(
            f"SELECT block, log_index, tx_hash, contract, event, json_remove(args, {','.join('?' * len(_BULKY))}) "
            f"FROM logs WHERE event IN ({marks}) ORDER BY block, log_index",
            (*_BULKY, *events),
        ).fetchall()
        history = cls()
        history.replay((int(b), int(i), str(tx), str(c), str(e), json.loads(a)) for b, i, tx, c, e, a in rows)
        return history

    def replay(self, logs: Iterable[tuple[int, int, str, str, str, dict[str, Any]]]) -> None:
        """Apply logs (block, log_index, tx, contract, event, args) in chain order."""
        for block, log_index, tx, contract, event, args in logs:
            position = (block, log_index)
            if position <= self.last_position:
                self.problems.append(HistoryProblem(position, tx, f"{contract}.{event} out of chain order"))
                continue
            self.last_position = position
            try:
                self._apply(position, tx, contract, event, args)
            except (KeyError, ValueError, TypeError) as exc:
                self.problems.append(HistoryProblem(position, tx, f"{contract}.{event} unreadable: {exc!r}"))

    def _problem(self, position: Position, tx: str, message: str) -> None:
        self.problems.append(HistoryProblem(position, tx, message))

    def _apply(self, position: Position, tx: str, contract: str, event: str, a: dict[str, Any]) -> None:
        if event == FLOOR_EVENT:
            if contract == "IsolationQuorum":
                self._floor.add(position, int(a["newFloor"]))
            return
        if event in ROLE_EVENTS:
            if contract not in ("Registry", "IsolationQuorum"):
                return
            key = (contract, _hex32(a["role"]), _addr(a["account"]))
            self._roles.setdefault(key, _Timeline()).add(position, event == "RoleGranted")
            return
        if contract != "Registry":
            return
        if event == "SectorAdded":
            self.sectors.setdefault(_hex32(a["sector"]), position)
        elif event == "OperatorAdded":
            self.operators.setdefault(_hex32(a["operator"]), (_hex32(a["sector"]), position))
        elif event == "OracleRegistered":
            account = _addr(a["account"])
            if account in self._oracles:
                self._problem(position, tx, f"oracle {account} registered twice")
                return
            state = OracleState(sector=_hex32(a["sector"]), operator=_hex32(a["operator"]), status=ACTIVE,
                                key_epoch=int(a.get("keyEpoch", 1)), key_hash=_hex32(a["pqKeyHash"]),
                                status_epoch=int(a.get("statusEpoch", 1)))
            oracle_timeline: _Timeline[OracleState] = _Timeline()
            oracle_timeline.add(position, state)
            self._oracles[account] = oracle_timeline
            self._membership_changed(state.sector, position, account, state.status)
        elif event == "OracleStatusChanged":
            account = _addr(a["account"])
            current = self._oracle_now(account, position, tx, event)
            if current is None:
                return
            if int(a["from"]) != current.status:
                self._problem(position, tx, f"oracle {account} changes status from {ORACLE_STATUS.get(int(a['from']))} "
                                            f"but was {current.status_name}")
            epoch = int(a["statusEpoch"]) if "statusEpoch" in a else current.status_epoch + 1
            state = replace(current, status=int(a["to"]), status_epoch=epoch)
            self._oracles[account].add(position, state)
            self._membership_changed(state.sector, position, account, state.status)
        elif event == "KeyRotated":
            account = _addr(a["account"])
            current = self._oracle_now(account, position, tx, event)
            if current is None:
                return
            self._oracles[account].add(position, replace(current, key_epoch=int(a["newEpoch"]),
                                                         key_hash=_hex32(a["newKeyHash"])))
        elif event == "NodeAdded":
            node = _hex32(a["node"])
            if node in self._nodes:
                self._problem(position, tx, f"node {node} added twice")
                return
            node_timeline: _Timeline[NodeState] = _Timeline()
            self._nodes[node] = node_timeline
            node_timeline.add(position, NodeState(sector=_hex32(a["sector"]), kind=_hex32(a.get("kind", b"")),
                                             criticality=int(a.get("criticality", 0)), status=1,
                                             status_epoch=int(a.get("statusEpoch", 1))))
        elif event == "NodeStatusChanged":
            node = _hex32(a["node"])
            timeline_or_none = self._nodes.get(node)
            if timeline_or_none is None or timeline_or_none.last is None:
                self._problem(position, tx, f"status change of unknown node {node}")
                return
            now = timeline_or_none.last
            if int(a["from"]) != now.status:
                self._problem(position, tx, f"node {node} changes status from {NODE_STATUS.get(int(a['from']))} "
                                            f"but was {now.status_name}")
            epoch = int(a["statusEpoch"]) if "statusEpoch" in a else now.status_epoch + 1
            timeline_or_none.add(position, replace(now, status=int(a["to"]), status_epoch=epoch))

    def _oracle_now(self, account: str, position: Position, tx: str, event: str) -> OracleState | None:
        timeline = self._oracles.get(account)
        if timeline is None or timeline.last is None:
            self._problem(position, tx, f"{event} of unregistered oracle {account}")
            return None
        return timeline.last

    def _membership_changed(self, sector: str, position: Position, account: str, status: int) -> None:
        timeline = self._members.setdefault(sector, _Timeline())
        members, active = timeline.last or (frozenset(), frozenset())
        members = members | {account} if status in (ACTIVE, QUARANTINED) else members - {account}
        active = active | {account} if status == ACTIVE else active - {account}
        timeline.add(position, (members, active))

    # --- questions -----------------------------------------------------------------------------

    def oracle_at(self, account: str, position: Position) -> OracleState | None:
        timeline = self._oracles.get(_addr(account))
        return timeline.at(position) if timeline is not None else None

    def oracle_now(self, account: str) -> OracleState | None:
        timeline = self._oracles.get(_addr(account))
        return timeline.last if timeline is not None else None

    def oracles(self) -> list[str]:
        return sorted(self._oracles)

    def oracle_timeline(self, account: str) -> list[tuple[Position, OracleState]]:
        """Every state the oracle went through (registration, status changes, key rotations), oldest
        first, each with the position it began at; empty for an account never registered."""
        timeline = self._oracles.get(_addr(account))
        return [] if timeline is None else list(zip(timeline.positions, timeline.states, strict=True))

    def members_at(self, sector: str | bytes, position: Position) -> frozenset[str]:
        """Accounts (lower-case) Active or Quarantined in the sector: the membership n counts."""
        timeline = self._members.get(sector_key(sector))
        state = timeline.at(position) if timeline is not None else None
        return state[0] if state is not None else frozenset()

    def active_at(self, sector: str | bytes, position: Position) -> frozenset[str]:
        timeline = self._members.get(sector_key(sector))
        state = timeline.at(position) if timeline is not None else None
        return state[1] if state is not None else frozenset()

    def required_at(self, sector: str | bytes, position: Position) -> int:
        """The quorum over the sector's membership at that position (docs/TRUST.md)."""
        return quorum_size(len(self.members_at(sector, position)))

    def floor_at(self, position: Position) -> int:
        """The isolation quorum's active floor at that position (0 before the quorum's deployment said it)."""
        return self._floor.at(position) or 0

    def below_floor(self, sector: str | bytes, position: Position) -> str:
        """Why ``sector`` could decide nothing at that position ('' if it could): fewer Active oracles than the
        quorum's floor. The contract refuses votes there; a decision recounted from events (a quarantine, an
        indicator) must not pass where a vote could not (a vault's one-member sector has a q(n) of 1)."""
        active, floor = len(self.active_at(sector, position)), self.floor_at(position)
        return f"{active} Active oracles, below the quorum's floor of {floor}" if active < floor else ""

    def has_role_at(self, contract: str, role: str | bytes, account: str, position: Position) -> bool:
        timeline = self._roles.get((contract, _hex32(role), _addr(account)))
        return bool(timeline.at(position)) if timeline is not None else False

    def role_holders_at(self, contract: str, role: str | bytes, position: Position) -> set[str]:
        role_hex = _hex32(role)
        return {account for (c, r, account), t in self._roles.items()
                if c == contract and r == role_hex and t.at(position)}

    @staticmethod
    def _node_key(node: str | bytes) -> str:
        """A node as the logs store it: raw bytes32, ``0x`` hex, or its name (``"pump-1"``)."""
        return _hex32(node) if isinstance(node, bytes) or str(node).startswith("0x") else sector_key(node)

    def node_at(self, node: str | bytes, position: Position) -> NodeState | None:
        timeline = self._nodes.get(self._node_key(node))
        return timeline.at(position) if timeline is not None else None

    def node_timeline(self, node: str | bytes) -> list[tuple[Position, NodeState]]:
        """Every state the node went through, oldest first, each with the position it began at (its
        NodeAdded, then each NodeStatusChanged): a node's lifecycle as `GET /nodes/{node}` shows it.
        Empty for a node the registry never added."""
        timeline = self._nodes.get(self._node_key(node))
        return [] if timeline is None else list(zip(timeline.positions, timeline.states, strict=True))

    def node_now(self, node: str | bytes) -> NodeState | None:
        return self.node_at(node, (1 << 62, 0))

    def nodes(self) -> list[str]:
        return sorted(self._nodes)
