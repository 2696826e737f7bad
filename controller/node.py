"""The controller loop: every step follows an on-chain decision and is itself recorded on-chain.

For each isolation the quorum executed (`ProposalExecuted`, action Isolate) the controller walks
its steps — plan, cascade, applied, dispatched, repaired, reintegrated — each one a hybrid-signed
event from its own registered identity (`controller._isolation_steps`). Spoofed sensors take
another path (`controller._intrusion_response`, `controller.cyber`). What they share (step kinds,
`Planner`, `Isolation`) is in `controller._controller_state`; every public name stays importable
from here.

Resuming. The controller keeps no state of its own: the steps done are its own events, read back
from its write-ahead outbox at start (which holds everything it ever recorded, sent or not), and the
decisions are read from the chain. A restart mid-repair continues with the next step; a step whose
commands went out but whose event was not written is redone, which devices tolerate (a command for
a state already reached is acknowledged as "already").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chain.client import ChainClient
from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.manifest import Deployment
from chain.outbox import EventOutbox
from chain.quorum import Action
from chain.recorder import EventRecorder
from controller._controller_state import (
    COUNTERMEASURE,
    INDICATOR,
    SENSOR_QUARANTINE,
    STEP_KINDS,
    Isolation,
    Planner,
    log_line,
)
from controller._intrusion_response import IntrusionResponse
from controller._isolation_steps import IsolationSteps
from controller._plan_workers import PlanWorkers
from controller.commander import Commander
from controller.crews import CrewPool
from controller.cyber import IndicatorTally, IntrusionTally, Quarantine
from controller.deadlines import Deadline, FieldClock
from controller.link_watch import LinkWatch
from core.config import Settings
from core.errors import ChainError, QeaimsError, UnknownSector
from core.messages import Sector
from keys.identity import HybridIdentity
from keys.ids import from_bytes32, split_event_id, to_bytes32
from vaults.onchain import SealWatch

__all__ = ["STEP_KINDS", "Controller", "Isolation", "Planner", "log_line"]


class Controller(IsolationSteps, IntrusionResponse):
    def __init__(self, *, settings: Settings, client: ChainClient, deployment: Deployment, identity: HybridIdentity,
                 commander: Commander, planner: Planner, crews: CrewPool | None = None, speed: float = 1.0,
                 clock: Callable[[], float] = time.time, field_clock: FieldClock | None = None) -> None:
        self.client, self.identity, self.me = client, identity, identity.address
        self.commander, self.planner = commander, planner
        self.plans = PlanWorkers(planner)
        self.crews = crews or CrewPool()
        self.speed = speed
        self._clock = clock
        self.field_clock = field_clock  # crews and technicians are due on it (`controller.deadlines`)
        self.outbox = EventOutbox.for_oracle(settings.outbox_dir, self.me, deployment.deployment_id)
        self.recorder = EventRecorder(client, identity, self.outbox)
        base = settings.home / "controller" / deployment.deployment_id
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.index = Indexer(base / "index.sqlite", client.rpc, deployment, contract_abis(),
                             max_logs_range=settings.max_logs_range)
        self.isolations: dict[int, Isolation] = {}
        self._unplanned: set[int] = set()  # isolations in sectors without a plug-in here (logged once)
        self._done = self._steps_in_outbox()
        self.tally = IntrusionTally()
        self._chain_view: dict[str, tuple[float, Any]] = {}
        self.quarantines = self._quarantines_in_outbox()
        for q in self.quarantines.values():  # a lifted quarantine's story stays told across a restart
            if q.lifted:
                self.tally.after[(q.sector, q.sensor)] = q.seen
        self._commanded_logged: set[str] = set()
        self._seal_watches: dict[str, SealWatch] = {}
        self._vault_seals_due = bool(self.quarantines)  # a restart compares its quarantines with the seals once
        self.indicator_tally = IndicatorTally()
        self.published_indicators = self._indicators_in_outbox()
        self.device_quarantines = self._device_quarantines_in_outbox()
        self.link_watch: LinkWatch | None = None  # the secure links' on-chain record, when they run

    def close(self) -> None:
        self.plans.close()
        self.index.close()
        self.outbox.close()

    def _steps_in_outbox(self) -> dict[int, dict[str, tuple[int, dict[str, Any]]]]:
        done: dict[int, dict[str, tuple[int, dict[str, Any]]]] = {}
        for row in self.outbox.rows_of_kinds(sorted(set(STEP_KINDS.values()))):
            try:
                body = json.loads(row.payload)
                done.setdefault(int(body["proposal"]), {})[str(body["step"])] = (row.seq, body)
            except (ValueError, KeyError, TypeError):
                continue
        return done

    def _indicators_in_outbox(self) -> dict[str, datetime]:
        """What this controller published and when each expires, by "sector|id", from its outbox: a
        publication sent but not yet on the chain (or its index) is never sent twice. Withdrawals and the
        verdicts each publication used are read from the chain in order (`controller.cyber.IndicatorTally`)."""
        published: dict[str, datetime] = {}
        for row in self.outbox.rows_of_kinds([INDICATOR]):
            try:
                body = json.loads(row.payload)
                if body["state"] == "published":
                    expires = datetime.fromisoformat(str(body["expires"]))
                    key = f"{body['source_sector']}|{body['id']}"
                    published[key] = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
                elif body["state"] == "withdrawn":
                    published = {k: v for k, v in published.items() if not k.endswith(f"|{body['id']}")}
            except (ValueError, KeyError, TypeError, OverflowError):
                continue
        return published

    def _device_quarantines_in_outbox(self) -> dict[str, str]:
        """The device quarantines this controller applied and did not lift (a restart repeats none)."""
        applied: dict[str, str] = {}
        for row in self.outbox.rows_of_kinds([COUNTERMEASURE]):
            try:
                body = json.loads(row.payload)
                if body["state"] == "applied" and body["type"] == "quarantine-device":
                    applied[f"{body['sector']}|{body['device']}"] = str(body["id"])
                elif body["state"] == "lifted":
                    applied = {k: v for k, v in applied.items() if v != body["id"]}
            except (ValueError, KeyError, TypeError):
                continue
        return applied

    def _quarantines_in_outbox(self) -> dict[str, Quarantine]:
        found: dict[str, Quarantine] = {}
        for row in self.outbox.rows_of_kinds([SENSOR_QUARANTINE]):
            try:
                body = json.loads(row.payload)
                key = f"{body['sector']}|{body['sensor']}"
                if body["state"] == "quarantined":
                    found[key] = Quarantine(str(body["sector"]), str(body["sensor"]), str(body["asset"]),
                                            str(body["node"]), [(str(o), int(s)) for o, s in body["evidence"]],
                                            seq=row.seq, due=Deadline.of(body))
                elif key in found:
                    found[key].lifted = True
                    seen = body.get("seen")
                    found[key].seen = {str(o): int(s) for o, s in seen.items()} if isinstance(seen, dict) else None
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def _logs(self, event: str) -> list[dict[str, Any]]:
        rows = self.index.db.execute("SELECT args FROM logs WHERE contract = 'IsolationQuorum' AND event = ? "
                                     "ORDER BY block, log_index", (event,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def _asset_cited(self, proposal: int, node: str) -> str:
        """The twin asset named by the verdict the proposal cites, else the node itself."""
        for created in self._logs("ProposalCreated"):
            if int(created["proposalId"]) != proposal:
                continue
            for evidence in created.get("evidence", []):
                oracle, seq = split_event_id(bytes.fromhex(str(evidence)[2:]))
                row = self.index.db.execute("SELECT payload FROM events WHERE oracle = ? AND seq = ?",
                                            (oracle.lower(), seq)).fetchone()
                if row is not None:
                    asset = json.loads(bytes(row[0])).get("asset")
                    if isinstance(asset, str) and asset:
                        return asset
        return node

    def _discover(self) -> tuple[list[Isolation], list[tuple[int, str]]]:
        """Executed isolations (known or new) and executed reintegrations (proposal, node)."""
        reintegrations: list[tuple[int, str]] = []
        for ex in self._logs("ProposalExecuted"):
            pid, node = int(ex["proposalId"]), from_bytes32(bytes.fromhex(str(ex["target"])[2:]))
            action = Action(int(ex["action"]))
            if action is Action.REINTEGRATE:
                reintegrations.append((pid, node))
            elif action is Action.ISOLATE and pid not in self.isolations:
                record = self.client.call1("Registry", "node", to_bytes32(node))
                try:
                    sector = Sector(from_bytes32(bytes(record[0])))
                except UnknownSector as exc:  # a sector this process has no plug-in for: the others go on
                    if pid not in self._unplanned:
                        self._unplanned.add(pid)
                        log_line("controller-unknown-sector", proposal=pid, node=node, error=str(exc))
                    continue
                steps = dict(self._done.get(pid, {}))
                asset = str(steps["plan"][1]["asset"]) if "plan" in steps else self._asset_cited(pid, node)
                iso = Isolation(pid, node, sector, asset, int(record[2]), steps)
                self.isolations[pid] = iso
                if "dispatched" in iso.steps and "repaired" not in iso.steps:
                    self.crews.hold(str(iso.steps["dispatched"][1]["crew"]), str(pid))
        return [i for i in self.isolations.values() if not i.finished], reintegrations

    def run_once(self) -> None:
        """Sync with the chain and take every isolation as far as it can go now."""
        self.index.sync()
        if self.recorder.sync():
            # a step written ahead whose send failed, or one mined and then lost with a restarted chain's
            # unjournaled blocks (the outbox said confirmed; the ledger's lastSeq says otherwise), goes out
            # before the next acts: the twins check the events the next step's commands cite on the chain
            # (a ChainError backs off the whole pass)
            self.recorder.flush()
        open_isolations, reintegrations = self._discover()
        for iso in sorted(open_isolations, key=lambda i: (-i.criticality, i.proposal)):
            try:
                self._advance(iso)
            except ChainError:
                raise  # the chain is down or refused: the loop backs off and starts over
            except QeaimsError as exc:
                # a device that does not answer (or refuses an isolate command) holds up its own
                # isolation, retried next pass; not the isolations behind it, the reintegrations or
                # the intrusion response (a silent device must not stop the city's quarantines)
                log_line("controller-step-waiting", proposal=iso.proposal, node=iso.node, error=str(exc)[:300])
        for pid, node in reintegrations:
            # only a reintegration decided after this isolation counts (ids grow; an older one closed an older cycle)
            waiting = next((i for i in open_isolations
                            if i.node == node and "repaired" in i.steps and pid > i.proposal), None)
            if waiting is not None and not waiting.finished:
                self._reintegrate(waiting, pid)
        self._respond_to_intrusions()
        self._publish_indicators()
        if self.link_watch is not None:
            self.link_watch.record(self.recorder)
