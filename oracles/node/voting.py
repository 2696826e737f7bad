"""Isolations voted on the quorum: step 4 of `OracleNode.run_once` (part of `oracles.node`).

Queued isolation actions are carried out on the quorum: open the proposal or vote on the open one,
citing the verdict event as evidence. An action driven by a quarantined sensor, or by a deviation
the controller commanded, is moot; one on a node still settling after its reintegration waits for
the window (`oracles.node.repairs`).

Exactly once: the contract refuses a second vote (`QuorumAlreadyVoted`) and a vote on a node already
isolated (`QuorumNodeNotInState`); both mean "done". A vote is only as durable as its block, so
after an outage the votes are re-checked (`_recheck_votes`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from chain.commanded import Release, commands_of, field_ms, sensor_asset
from chain.quarantines import active_quarantines, named_sensor
from chain.quorum import Action
from core.errors import ContractRejected, TransactionFailed
from keys.ids import event_id, to_bytes32
from oracles.node.repairs import RepairWatch
from oracles.node.state import log_line
from oracles.sector_model import PHYSICS_NOTE
from sectors.plugin import plugin_of

__all__ = ["Voting"]


def _quarantined_evidence(payload: dict[str, Any], quarantined: Collection[str]) -> str | None:
    """The quarantined sensor a verdict's evidence rests on, if any.

    A model's verdict rests on the sensor it names first (the largest deviation); the others are
    context, and a sector with one quarantined sensor must still see real faults in the rest. A
    physics rule's verdict rests on *every* instrument it names (`oracles.sector_model.PHYSICS_NOTE`):
    a wet-well level found falsified must not go on failing a healthy pump through the rule once
    the step that gave it away has left the window.
    """
    first = named_sensor(payload)
    if first is not None and first in quarantined:
        return first
    if PHYSICS_NOTE not in str(payload.get("reason", "")):
        return None
    for entry in payload.get("sensors") or []:
        name = entry[0] if isinstance(entry, list | tuple) and entry else entry
        if isinstance(name, str) and name in quarantined:
            return name
    return None


def _lingering(released: dict[str, Release], payload: dict[str, Any], aftermath_s: float) -> dict[str, str]:
    """The released commands whose effect a verdict's reading may still show: given back at most
    `aftermath_s` before it (or after it: the reading was taken under the hold)."""
    at_ms = field_ms(payload.get("observed_at"))
    if not released or at_ms is None:
        return {}
    return {asset: f"{r.what}, released" for asset, r in released.items()
            if r.field_ms is not None and at_ms - r.field_ms <= aftermath_s * 1000}


class Voting(RepairWatch):
    """Pending isolation actions decided: voted, moot or refused."""

    def _act(self) -> None:
        pending = self._db.execute(
            "SELECT episode, target, evidence_seq FROM actions WHERE state = 'pending' ORDER BY rowid").fetchall()
        if not pending:
            return
        if self.outbox.pending_count():
            self.recorder.flush()  # the evidence goes on-chain before the vote that cites it
        # the peers' index is synced every peer interval (and at start): a vote does not wait for a sync,
        # which after a backlog can take seconds; a quarantine is known at most one interval late
        quarantined = active_quarantines(self.peers.index.db, self.sector.value)
        commanded, released = commands_of(self.peers.index.db, self.sector.value, self._speaks_for_controller)
        plugin = plugin_of(self.sector)
        self._field_times()
        for node in list(self._repairs):
            # reintegrated since `_verify_repairs` last looked: the node and its dependants settle now,
            # or a dependant's fail-back transient (a data centre's switch) is voted on before they do
            if self.quorum.node_status(to_bytes32(node)) == "active":
                self._settled_from_repair(node)
        for episode, target, seq in pending:
            row = self.outbox.get(int(seq))
            payload = json.loads(row.payload) if row is not None else {}
            sensor = named_sensor(payload)
            distrusted = _quarantined_evidence(payload, quarantined)
            if distrusted is not None:
                # its sector's quorum found this sensor spoofed: what it says no longer moves anything
                self._decided(episode, target, "moot", f"driven by quarantined sensor {distrusted}")
                continue
            if sensor is not None and sensor_asset(sensor) in commanded:
                # the deviation is one the city commanded (a protection, or the isolation's own plan): not a fault
                self._decided(episode, target, "moot",
                              f"driven by {sensor}, held by the controller: {commanded[sensor_asset(sensor)]}")
                continue
            effect = plugin.commanded_effect
            lingering = _lingering(released, payload, plugin.command_aftermath_s) if plugin.command_aftermath_s > 0 else {}
            in_force = {**lingering, **commanded}
            why = effect(sensor, in_force) if sensor is not None and effect is not None and in_force else None
            if why is not None:
                # a command on another asset moved this one (the patients diverted here): not a fault
                self._decided(episode, target, "moot", f"driven by {sensor}: {why}")
                continue
            window = self._settling.get(str(target))
            if window is not None and window.rows(self.stream.rows) < self.settle_rows:
                continue  # decided once the node has settled after its reintegration
            if window is not None and not any(k.startswith(f"{target}|fault") for k in self.stream.open_episodes):
                state, detail = "moot", "a transient while the node settled after its reintegration"
            else:
                state, detail = self._isolate(str(target), int(seq), str(episode))
            self._decided(episode, target, state, detail)

    def _decided(self, episode: str, target: str, state: str, detail: str) -> None:
        """Close a pending action (voted, moot or refused) and say why in the log."""
        self._db.execute("UPDATE actions SET state = ?, detail = ? WHERE episode = ?", (state, detail, episode))
        log_line("isolation-" + state, oracle=self.me, target=target, episode=episode, detail=detail)

    def _recheck_votes(self) -> None:
        """A vote is only as durable as its block: after an outage the chain may have lost it (the
        journal keeper can lose the last fraction of a second on a hard kill). Queue it again if the
        proposal no longer holds it while the node is still active."""
        rows = self._db.execute("SELECT episode, target, detail FROM actions WHERE state = 'voted'").fetchall()
        for episode, target, detail in rows:
            proposal = int(str(detail).rsplit(" ", 1)[-1]) if str(detail).startswith("proposal ") else 0
            held = proposal > 0 and bool(self.client.call1("IsolationQuorum", "hasVoted", proposal, self.me))
            if not held and self.quorum.node_status(to_bytes32(str(target))) == "active":
                self._db.execute("UPDATE actions SET state = 'pending', detail = 'vote lost with the chain' "
                                 "WHERE episode = ?", (episode,))
                log_line("isolation-vote-lost", oracle=self.me, target=target, episode=episode, proposal=proposal)

    def _isolate(self, target: str, evidence_seq: int, episode: str) -> tuple[str, str]:
        reason = to_bytes32(f"fault:{target}"[:32])
        try:
            proposal = self.quorum.propose(self.identity, Action.ISOLATE, to_bytes32(target), reason,
                                           [event_id(self.me, evidence_seq)])
        except ContractRejected as exc:
            if exc.error == "QuorumAlreadyVoted":
                return "voted", f"proposal {exc.args_by_name.get('proposalId')}"
            if exc.error in ("QuorumNodeNotInState", "QuorumWrongState"):
                return "moot", f"{target} is no longer active (already isolated or under repair)"
            return "refused", str(exc)
        except TransactionFailed:
            # a vote racing the one that executed the proposal can revert without a decodable reason
            if self.quorum.node_status(to_bytes32(target)) != "active":
                return "moot", f"{target} is no longer active (isolated while this vote was in flight)"
            raise
        self.stats.votes += 1
        return "voted", f"proposal {proposal}"
