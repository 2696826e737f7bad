"""Nodes under repair and nodes back from one, as this oracle follows them on-chain (part of
`oracles.node`).

A node under repair is voted back (`Action.REINTEGRATE`) once fresh readings show it healthy,
counted from the moment the crew's repair took effect in the field (the controller's `repaired`
step). A node back from repair, and what depends on it, *settles*: for `settle_rows` rows from the
fail-back's field time (the controller's `reintegrated` step) a fault on them is acted on only if
it outlasts the window (`oracles.node.voting`). Only steps recorded by a holder of the quorum's
repair role count: anyone may record an event.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from eth_utils.address import to_checksum_address

from chain.quorum import Action
from core.errors import ContractRejected, QeaimsError
from core.kinds import kind_by_name
from keys.ids import from_bytes32, to_bytes32
from oracles.merkle import timestamp_ms
from oracles.node.state import NodeState, RowsSince, log_line

__all__ = ["RepairWatch"]


_REINTEGRATED = kind_by_name("reintegrated")
_REPAIRED = kind_by_name("repaired")
_ACTIVE, _REPAIRING = 1, 3  # Registry.NodeStatus


class RepairWatch(NodeState):
    """Repairs verified, reintegrations voted, settling windows opened and timed."""

    def _speaks_for_controller(self, account: str) -> bool:
        """Whether `account` holds the quorum's repair role (the controller's), asked once per account."""
        known = self._controllers.get(account.lower())
        if known is None:
            role = self.client.call1("IsolationQuorum", "REPAIR_ROLE")
            known = bool(self.client.call1("IsolationQuorum", "hasRole", role, to_checksum_address(account)))
            self._controllers[account.lower()] = known
        return known

    def _rows_since_now(self) -> RowsSince:
        """A count of the rows judged from the readings arriving from now on."""
        after = self._stored_last_id()
        return RowsSince(after, self.stream.rows if self._cursor >= after else None)

    def _field_times(self) -> None:
        """Give each settling window that waits for it the field time of its fail-back, from the
        controller's `reintegrated` step (read from the peers' index, synced every peer interval).

        A window that has waited `3 x settle_rows` rows of readings for it stops waiting and counts
        `settle_rows` readings arriving from then on; if the step comes after all, its field time
        still counts. In a storm day the controller's step landed 69 s after the node was back (its
        device's acknowledgement crossed the same loaded broker as the readings): the rows counted
        while waiting had ended the window at once, and the fail-back transient that arrived next
        isolated `switch-1`.
        """
        open_ = {node: w for node, w in self._settling.items() if w.waiting or w.fell_back}
        if not open_:
            return
        found = _reintegrations(self.peers.index.db, self._speaks_for_controller)
        for node, window in open_.items():
            origin = self._settling_origin.get(node, node)
            if origin in found:
                window.waiting = window.fell_back = False
                window.since_ms = found[origin]
                window.advance(self._cursor, self.stream)
                log_line("settling-from", oracle=self.me, node=node, field_ms=window.since_ms)
            elif window.waiting and window.arrival_rows(self.stream.rows) >= 3 * self.settle_rows:
                # no controller step for it yet: the readings' arrival order it is, from now on
                window.waiting, window.fell_back, window.start_row = False, True, self.stream.rows
                log_line("settling-from", oracle=self.me, node=node, field_ms=None, fell_back=True)

    def _settled_from_repair(self, node: str) -> None:
        """The node and what depends on it at once (a data centre's switch fails back with it)
        settle for `settle_rows` rows from the fail-back's field time, once the controller's
        `reintegrated` step gives it (`_field_times`); until then a vote on them waits."""
        from sectors.graph import at_risk

        self._repairs.pop(node, None)
        window = replace(self._rows_since_now(), waiting=True)
        try:
            moved = [r.node for r in at_risk(node) if r.time_to_impact_s == 0]
        except QeaimsError:  # a node the dependency graph does not know settles alone
            moved = []
        for settling in (node, *moved):
            self._settling[settling] = window
            self._settling_origin[settling] = node
        log_line("settling", oracle=self.me, node=node, nodes=[node, *moved], rows=self.stream.rows,
                 after_reading=window.after_id, unjudged=self.backlog(), settle_rows=self.settle_rows)

    def _verify_repairs(self) -> None:
        """Vote to reintegrate a node of this sector under repair once fresh readings show it healthy:
        no fault episode open on it for `clear_rows` rows from the moment the crew's repair took
        effect in the field (the controller's `repaired` step; rows arriving after it, where the
        field gave no time).

        Counting from the dispatch instead voted a data centre back 14 s after its crew set out
        (storm day): once the failover had moved its traffic, its verdicts were anomalies, no
        longer faults, and the node was on-chain active for 71 s before the crew had repaired it.
        A node whose repair nobody with the repair role reports stays under repair."""
        rows = self.peers.index.db.execute(
            "SELECT args FROM logs WHERE contract = 'Registry' AND event = 'NodeStatusChanged'").fetchall()
        latest: dict[str, int] = {}
        for (args,) in rows:
            change = json.loads(args)
            if from_bytes32(bytes.fromhex(str(change["sector"])[2:])) == self.sector.value:
                latest[from_bytes32(bytes.fromhex(str(change["node"])[2:]))] = int(change["to"])
        done: dict[str, int | None] | None = None
        for node, status in latest.items():
            if status != _REPAIRING:
                if node in self._repairs and status == _ACTIVE:  # back: it settles
                    self._settled_from_repair(node)
                self._repairs.pop(node, None)
                self._reintegration_voted.discard(node)
                continue
            seen = self._repairs.get(node)
            if seen is None:
                seen = self._repairs[node] = replace(self._rows_since_now(), waiting=True)
            if seen.waiting:
                if done is None:
                    done = _repairs_done(self.peers.index.db, self._speaks_for_controller)
                if node not in done:
                    continue  # the crew is still at work
                if done[node] is None:
                    seen = self._repairs[node] = self._rows_since_now()
                else:
                    seen.waiting, seen.since_ms = False, done[node]
                    seen.advance(self._cursor, self.stream)
                log_line("repair-verifying", oracle=self.me, node=node, field_ms=done[node])
            faulty = any(key.startswith(f"{node}|fault") for key in self.stream.open_episodes)
            if faulty or seen.rows(self.stream.rows) < self.stream.clear_rows or node in self._reintegration_voted:
                continue
            try:
                proposal = self.quorum.propose(self.identity, Action.REINTEGRATE, to_bytes32(node),
                                               to_bytes32("verified on fresh readings"))
            except ContractRejected as exc:
                if exc.error not in ("QuorumAlreadyVoted", "QuorumNodeNotInState", "QuorumWrongState"):
                    raise
                proposal = None
            self._reintegration_voted.add(node)
            log_line("reintegration-vote", oracle=self.me, node=node, proposal=proposal)


def _reintegrations(db: sqlite3.Connection, trusted: Callable[[str], bool]) -> dict[str, int | None]:
    """Node → the latest field time (ms) a device reported acting in the controller's `reintegrated`
    step for the node's latest return to active (None when no device reported a time), for the
    nodes whose step is indexed. Steps recorded before that return belong to an earlier repair."""
    return _controller_steps(db, trusted, _REINTEGRATED, _ACTIVE)


def _repairs_done(db: sqlite3.Connection, trusted: Callable[[str], bool]) -> dict[str, int | None]:
    """Node → the field time (ms) the crew's repair took effect, from the controller's `repaired`
    step for the node's latest repair (None when the field gave no time), for the nodes whose
    step is indexed."""
    return _controller_steps(db, trusted, _REPAIRED, _REPAIRING)


def _controller_steps(db: sqlite3.Connection, trusted: Callable[[str], bool], kind: int,
                      status: int) -> dict[str, int | None]:
    """Node → the latest field time (ms) in the controller's `kind` step recorded since the node's
    latest change to `status` (its acks' `at`, or the step's own `at`; None when it has none).
    Only steps from a holder of the repair role count: anyone may record an event."""
    since: dict[str, int] = {}
    for args, block in db.execute("SELECT args, block FROM logs WHERE contract = 'Registry' "
                                  "AND event = 'NodeStatusChanged' ORDER BY block, log_index"):
        change = json.loads(args)
        if int(change["to"]) == status:
            since[from_bytes32(bytes.fromhex(str(change["node"])[2:]))] = int(block)
    out: dict[str, int | None] = {}
    for recorder, payload, block in db.execute("SELECT oracle, payload, block FROM events WHERE kind = ? "
                                               "ORDER BY block, log_index", (kind,)):
        try:
            body = json.loads(bytes(payload))
            node = str(body["node"])
            if node not in since or int(block) < since[node] or not trusted(str(recorder)):
                continue
            stamps = [a["at"] for a in body.get("acks", []) if a.get("at")] + ([body["at"]] if body.get("at") else [])
            times = [timestamp_ms(datetime.fromisoformat(str(t))) for t in stamps]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not a controller step this reader understands
        out[node] = max(times) if times else None
    return out
