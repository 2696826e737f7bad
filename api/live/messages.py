"""The stream's messages, built from the API's index: one function for the live follower and for a
client that resumes with `Last-Event-ID`, so a resumed client gets exactly what a connected one got.

Each message is tied to one chain log by its cursor `"<block>:<log_index>"` (the primary key of the
index's `logs` table, stable across rewinds), which is also its SSE id. An alert and the ledger event
that raised it share the log and so the id; they are always sent back to back.

Topics:
- `event`: every `EventRecorded` (cursor, block, log_index, sector, node, kind, oracle, seq, time);
- `alert`: an event of an alerting kind (`ALERT_KINDS`), with a summary of the payload that raised it;
- `node-status`: the registry's `NodeStatusChanged` (subject node) and `OracleStatusChanged` (subject oracle);
- `vote`: the isolation quorum's logs (proposal opened, vote cast, executed, blocked, repair, override);
- `proposal`: the governance council's logs (created, approved, revoked, queued, executed, cancelled);
- `notice`: an event of kind `notice` (an operator's crisis notice), with its payload {id, sha256, audience,
  sector} (the text is in `GET /notices`, which also says whether the notice is verified);
- `audit-progress`: published by the audit job (`hub_of(app).publish`), not from a log; not for operators;
- `rewound` (the chain lost blocks; the index dropped them) and `lagged` (a slow client lost
  messages), made by the follower and the hub, not from a log, and sent whatever topics were asked for.

A message's `sector` is the one an operator must hold to receive it: for a ledger event, its recording
oracle's registered sector, except for the self-healing controller's events (registered in its own
`control` sector, acting on every sector), which are about the sector their payload names. Council proposals have none and
are not sent to operators at all (`OPERATOR_TOPICS`): a council call may touch any sector, and an
operator cannot act on it.

A `notice` also reaches the providers it is addressed to (`for_sector`): its `audience` is the sector
whose operators (hospitals, banks) subscribe to it, whatever sector it is about. Only a notice recorded
by the control room's identity (the `control` sector) carries one: any Active oracle may record a
`notice` event, and one from elsewhere must not reach another sector's operators (`chain.notices` has
the full rules, and `GET /notices` the verdict).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chain.registry_history import NODE_STATUS, ORACLE_STATUS
from core.errors import ConfigError, UnknownSector
from core.kinds import kind_name
from core.sectors import CONTROL_SECTOR, Sector
from keys.errors import KeysError
from keys.ids import from_bytes32

__all__ = ["ALERT_KINDS", "CONTROL_TOPICS", "OPERATOR_TOPICS", "TOPICS", "Message", "cursor_key", "for_sector", "index_end", "messages_after",
           "parse_cursor"]

TOPICS: tuple[str, ...] = ("event", "alert", "node-status", "vote", "proposal", "notice", "audit-progress",
                           "rewound", "lagged")
OPERATOR_TOPICS = frozenset({"event", "alert", "node-status", "vote", "notice", "rewound", "lagged"})
CONTROL_TOPICS = frozenset({"rewound", "lagged"})  # sent to every client, whatever topics it asked for
ALERT_KINDS = frozenset({"anomaly", "fault", "intrusion", "qkd-alarm", "sensor-quarantine", "countermeasure"})
PAYLOAD_SUMMARY_CHARS = 2_000
_ZERO32 = "0x" + "00" * 32
_ACTIONS = {0: "isolate", 1: "reintegrate", 2: "quarantine"}
_QUORUM_EVENTS = frozenset({"ProposalCreated", "VoteCast", "ProposalExecuted", "IsolationBlockedByCap",
                            "QuarantineBlockedByRate", "RepairStarted", "GovernanceOverride"})
_COUNCIL_EVENTS = frozenset({"ProposalCreated", "ProposalApproved", "ApprovalRevoked", "ProposalQueued",
                             "ProposalUnqueued", "ProposalExecuted", "EmergencyExecuted", "ProposalCancelled"})
# the arguments a council message carries (no calldata: the proposal's own endpoint shows it)
_COUNCIL_FIELDS = ("proposalId", "proposer", "governor", "approvals", "eta", "executor", "required", "reason",
                   "description", "by")


@dataclass(frozen=True)
class Message:
    """One message for the stream: its topic, the log it comes from, the sector it belongs to."""

    topic: str
    data: dict[str, Any]
    cursor: str | None = None
    sector: str | None = None
    key: tuple[int, int] = field(default=(-1, -1), compare=False)
    audience: str | None = None  # a control-room notice's audience (`for_sector`)


def for_sector(message: Message, sector: str) -> bool:
    """Whether `message` is for an operator of `sector`: it is about that sector, or it is a notice
    addressed to that sector as an audience (a provider hears the notices meant for it, whoever posts
    them; a `public` notice is for the public pages, and for its own sector's operators only)."""
    return message.sector == sector or (message.topic == "notice" and message.audience == sector)


def parse_cursor(text: str) -> tuple[int, int]:
    """`"<block>:<log_index>"` → (block, log_index); ValueError names what is wrong."""
    block, sep, index = text.partition(":")
    if not sep or not block.isdigit() or not index.isdigit() or len(text) > 40:
        raise ValueError(f"a cursor is '<block>:<log_index>', not {text[:40]!r}")
    return int(block), int(index)


def cursor_key(message: Message) -> tuple[int, int]:
    return message.key


def _name(hex32: str | None) -> str:
    """A bytes32 as its ASCII name ('' for zero, the hex itself when it is not a name)."""
    if not hex32 or hex32 == _ZERO32:
        return ""
    try:
        return from_bytes32(bytes.fromhex(hex32[2:]))
    except (KeysError, ValueError):
        return hex32


def _time(ts: int | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def _payload(blob: bytes) -> Any:
    text = bytes(blob).decode(errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text[:PAYLOAD_SUMMARY_CHARS]


def _summary(payload: Any) -> Any:
    """The payload as sent in an alert: whole when small, else its scalar fields only."""
    if len(json.dumps(payload)) <= PAYLOAD_SUMMARY_CHARS:
        return payload
    if isinstance(payload, dict):
        return {k: v for k, v in payload.items() if isinstance(v, str | int | float | bool) and len(str(v)) < 200}
    return str(payload)[:PAYLOAD_SUMMARY_CHARS]


class _Sectors:
    """Sector lookups shared by one build: an oracle's registered sector, a quorum proposal's sector."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._oracles: dict[str, str] = {}
        self._proposals: dict[int, tuple[str, str, str]] = {}

    def of_oracle(self, oracle: str) -> str:
        if oracle not in self._oracles:
            row = self.db.execute("SELECT sector FROM oracle_keys WHERE oracle = ? AND epoch = 1",
                                  (oracle.lower(),)).fetchone()
            self._oracles[oracle] = _name(row[0]) if row and row[0] else ""
        return self._oracles[oracle]

    def of_proposal(self, proposal_id: int) -> tuple[str, str, str]:
        """(sector, action, target) of a quorum proposal, from its ProposalCreated log."""
        if proposal_id not in self._proposals:
            row = self.db.execute(
                "SELECT args FROM logs WHERE contract = 'IsolationQuorum' AND event = 'ProposalCreated' "
                "AND json_extract(args, '$.proposalId') = ? ORDER BY block DESC LIMIT 1", (proposal_id,)).fetchone()
            if row is None:
                self._proposals[proposal_id] = ("", "", "")
            else:
                args = json.loads(row[0])
                self._proposals[proposal_id] = (_name(args.get("sector")), _ACTIONS.get(int(args["action"]), "?"),
                                                _target(int(args["action"]), str(args.get("target"))))
        return self._proposals[proposal_id]


def _about(recorder: str, payload: Any) -> str:
    """The sector an event is about: its recorder's, except for the controller (its own `control` sector,
    recording for every sector under REPAIR_ROLE), whose payloads name the sector they act on."""
    if recorder != CONTROL_SECTOR or not isinstance(payload, dict) or not isinstance(payload.get("sector"), str):
        return recorder
    try:
        return Sector(payload["sector"]).value
    except (UnknownSector, ConfigError):
        return recorder


def _audience(recorder: str, payload: Any) -> str | None:
    """A notice's audience, when the control room recorded it and it names one."""
    if recorder != CONTROL_SECTOR or not isinstance(payload, dict):
        return None
    audience = payload.get("audience")
    return audience if isinstance(audience, str) and audience else None


def _target(action: int, target: str) -> str:
    """A quorum target: a node's name, or the quarantined oracle's address."""
    if action == 2 and target.startswith("0x") and len(target) == 66:
        return "0x" + target[-40:]
    return _name(target)


def index_end(db: sqlite3.Connection) -> tuple[int, int]:
    """The last (block, log_index) in the index, (-1, -1) when it is empty."""
    row = db.execute("SELECT block, log_index FROM logs ORDER BY block DESC, log_index DESC LIMIT 1").fetchone()
    return (int(row[0]), int(row[1])) if row else (-1, -1)


def messages_after(db: sqlite3.Connection, after: tuple[int, int], *, limit: int = 1000,
                   until: tuple[int, int] | None = None) -> tuple[list[Message], tuple[int, int]]:
    """The messages of the next `limit` logs after `after` (up to `until` inclusive, when given), and
    the cursor of the last log read (`after` when none): the caller goes on from there."""
    clauses = "(l.block > ? OR (l.block = ? AND l.log_index > ?))"
    params: list[int] = [after[0], after[0], after[1]]
    if until is not None:
        clauses += " AND (l.block < ? OR (l.block = ? AND l.log_index <= ?))"
        params += [until[0], until[0], until[1]]
    rows = db.execute(
        f"SELECT l.block, l.log_index, l.timestamp, l.contract, l.event, l.args, e.oracle, e.seq, e.kind, e.node, "
        f"e.payload FROM logs l LEFT JOIN events e ON e.block = l.block AND e.log_index = l.log_index "
        f"WHERE {clauses} "
        f"ORDER BY l.block, l.log_index LIMIT ?", (*params, limit)).fetchall()
    sectors = _Sectors(db)
    out: list[Message] = []
    last = after
    for row in rows:
        last = (int(row[0]), int(row[1]))
        out.extend(_from_log(row, sectors))
    return out, last


def _from_log(row: tuple[Any, ...], sectors: _Sectors) -> list[Message]:
    block, log_index, ts, contract, event, args_text, oracle, seq, kind, node, payload = row
    key = (int(block), int(log_index))
    cursor = f"{block}:{log_index}"
    base = {"cursor": cursor, "block": int(block), "log_index": int(log_index), "time": _time(ts)}
    if contract == "EventLedger" and event == "EventRecorded" and oracle is not None:
        recorder = sectors.of_oracle(str(oracle))
        decoded = _payload(payload)
        sector = _about(recorder, decoded)
        name = kind_name(int(kind))
        body = {**base, "sector": sector, "node": _name(str(node)), "kind": name, "oracle": str(oracle),
                "seq": int(seq)}
        if recorder != sector:
            body["recorder_sector"] = recorder
        found = [Message("event", body, cursor, sector, key)]
        if name in ALERT_KINDS:
            found.insert(0, Message("alert", {**body, "payload": _summary(decoded)}, cursor, sector, key))
        elif name == "notice":  # a crisis notice: its payload is the message
            found.insert(0, Message("notice", {**body, "notice": _summary(decoded)}, cursor, sector, key,
                                    _audience(recorder, decoded)))
        return found
    args: dict[str, Any] = json.loads(args_text)
    if contract == "Registry" and event == "NodeStatusChanged":
        sector = _name(args.get("sector"))
        return [Message("node-status", {
            **base, "subject": "node", "sector": sector, "node": _name(args.get("node")),
            "from": NODE_STATUS.get(int(args["from"]), str(args["from"])),
            "to": NODE_STATUS.get(int(args["to"]), str(args["to"])), "status_epoch": int(args["statusEpoch"]),
        }, cursor, sector, key)]
    if contract == "Registry" and event == "OracleStatusChanged":
        account = str(args["account"]).lower()
        sector = sectors.of_oracle(account)
        return [Message("node-status", {
            **base, "subject": "oracle", "sector": sector, "oracle": account,
            "from": ORACLE_STATUS.get(int(args["from"]), str(args["from"])),
            "to": ORACLE_STATUS.get(int(args["to"]), str(args["to"])), "reason": _name(args.get("reason")),
            "status_epoch": int(args["statusEpoch"]),
        }, cursor, sector, key)]
    if contract == "IsolationQuorum" and event in _QUORUM_EVENTS:
        return [_quorum(base, event, args, sectors, key)]
    if contract == "GovernanceCouncil" and event in _COUNCIL_EVENTS:
        body = {**base, "event": event, **{k: args[k] for k in _COUNCIL_FIELDS if k in args}}
        return [Message("proposal", body, cursor, None, key)]
    return []


def _quorum(base: dict[str, Any], event: str, args: dict[str, Any], sectors: _Sectors,
            key: tuple[int, int]) -> Message:
    body: dict[str, Any] = {**base, "event": event}
    if event in ("RepairStarted", "GovernanceOverride"):
        node = _name(args.get("node"))
        row = sectors.db.execute(
            "SELECT args FROM logs WHERE contract = 'Registry' AND event = 'NodeAdded' "
            "AND json_extract(args, '$.node') = ? LIMIT 1", (args.get("node"),)).fetchone()
        sector = _name(json.loads(row[0]).get("sector")) if row else ""
        body.update(node=node, sector=sector)
        if event == "GovernanceOverride":
            body.update({"from": NODE_STATUS.get(int(args["fromStatus"]), "?"),
                         "to": NODE_STATUS.get(int(args["toStatus"]), "?"), "reason": _name(args.get("reason"))})
        return Message("vote", body, base["cursor"], sector, key)
    proposal = int(args["proposalId"])
    sector, action, target = sectors.of_proposal(proposal)
    body.update(proposal=proposal, sector=sector, action=action, target=target)
    for name, out in (("oracle", "oracle"), ("proposer", "proposer")):
        if name in args:
            body[out] = str(args[name]).lower()
    for name, out in (("activeVotes", "active_votes"), ("required", "required"), ("deadline", "deadline"),
                      ("outOfService", "out_of_service"), ("nodes", "nodes"), ("recent", "recent"),
                      ("limit", "limit")):
        if name in args:
            body[out] = int(args[name])
    return Message("vote", body, base["cursor"], sector, key)
