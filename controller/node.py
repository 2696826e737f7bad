"""The controller loop: every step follows an on-chain decision and is itself recorded on-chain.

For each isolation the quorum executed (`ProposalExecuted`, action Isolate) the controller walks
these steps, each one a hybrid-signed event from its own registered identity:

1. ``plan`` (``reroute-plan``): the sector's isolate plan and the restore plan around it, for the
   asset named by the fault verdict the proposal cites as evidence. A plan the model cannot make
   (the planner raised) is recorded with its ``error`` and no commands: the isolation still goes on
   to protection, dispatch and repair, and one bad plan never stalls the other isolations.
2. ``cascade`` (``cascade-analysis``): what else the isolated node puts at risk (`sectors.graph`),
   ranked by criticality and time to impact, and what the controller does about each one before
   the failure reaches it (`controller.protect`: backup transfer, draining, fail-over, diversion).
3. ``applied`` (``isolation-applied``): the isolate commands sent with ``decision_ref
   proposal:<id>``, the protective commands with ``event:<controller>:<cascade seq>`` and the
   restore commands with ``event:<controller>:<plan seq>``; the devices (twins) check those
   references on the chain before they move, and each answers with an ack. A refused protective
   command is recorded, not fatal: the isolation must go ahead even if a neighbour cannot help.
4. ``dispatched`` (``repair-dispatched``): a crew is assigned (most critical node first when crews
   are short) and the node moves to *repairing* on-chain (`beginRepair`, REPAIR_ROLE).
5. ``repaired`` (``repaired``): when the crew's time is up, the fault is cleared in the field.
6. ``reintegrated`` (``reintegrated``): only after the oracles' reintegration quorum executed
   (`ProposalExecuted`, action Reintegrate), the reintegrate plan's commands and the inverse of
   every protective command that was carried out are sent with that proposal as their decision.

Spoofed sensors take another path (`controller.cyber`): a quorum of intrusion verdicts naming
one sensor gets it quarantined (a ``sensor-quarantine`` event), a technician to the device, and the
quarantine lifted once the tampering is removed.

Resuming. The controller keeps no state of its own: the steps done are its own events, read back
from its write-ahead outbox at start (which holds everything it ever recorded, sent or not), and the
decisions are read from the chain. A restart mid-repair continues with the next step; a step whose
commands went out but whose event was not written is redone, which devices tolerate (a command for
a state already reached is acknowledged as "already").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

from web3 import Web3

from chain.client import ChainClient
from chain.commanded import SILENT, Answer, may_have_acted
from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.manifest import Deployment
from chain.outbox import EventOutbox
from chain.quorum import Action
from chain.recorder import EventRecorder, canonical_payload
from controller.commander import Ack, Commander, CommandTimeout
from controller.crews import CrewPool
from controller.cyber import TECHNICIAN_S, IntrusionTally, Quarantine
from controller.plans import ResponsePlan
from controller.protect import inverse, protections
from core import logs
from core.config import Settings
from core.errors import ChainError, ContractRejected, QeaimsError
from core.kinds import kind_by_name
from core.messages import ActuatorCommand, Sector
from keys.errors import KeysError
from keys.identity import HybridIdentity
from keys.ids import from_bytes32, split_event_id, to_bytes32
from sectors.remote import SimControl

__all__ = ["STEP_KINDS", "Controller", "Isolation", "Planner"]

COMMAND_TIMEOUT_S = 30.0  # a busy device answers at its next step; silence this long is an outage
OPTIONAL_TIMEOUT_S = 5.0  # a protective command's device may not answer: its silence is recorded
# (a sector with no device online, `Commander.online`, is not waited for at all)
_T = TypeVar("_T")
SENSOR_QUARANTINE = kind_by_name("sensor-quarantine")
INTRUSION = kind_by_name("intrusion")
STEP_KINDS: dict[str, int] = {
    "plan": kind_by_name("reroute-plan"),
    "applied": kind_by_name("isolation-applied"),
    "cascade": kind_by_name("cascade-analysis"),
    "dispatched": kind_by_name("repair-dispatched"),
    "repaired": kind_by_name("repaired"),
    "reintegrated": kind_by_name("reintegrated"),
}


def log_line(event: str, **fields: object) -> None:
    logs.log_line("qeaims.controller", event, **fields)


Planner = Callable[[Sector, str, str, Sequence[dict[str, Any]]], "ResponsePlan | None"]
"""(sector, purpose, asset, commands already sent for it) → the plan, or None when there is nothing
to do for this asset (`controller.planning.TwinPlanner` is the real one)."""


@dataclass
class Isolation:
    proposal: int
    node: str
    sector: Sector
    asset: str
    criticality: int
    steps: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # step → (seq, payload)

    @property
    def finished(self) -> bool:
        return "reintegrated" in self.steps


class Controller:
    def __init__(self, *, settings: Settings, client: ChainClient, deployment: Deployment, identity: HybridIdentity,
                 commander: Commander, planner: Planner, crews: CrewPool | None = None, speed: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.client, self.identity, self.me = client, identity, identity.address
        self.commander, self.planner = commander, planner
        self.crews = crews or CrewPool()
        self.speed = speed
        self._clock = clock
        self.outbox = EventOutbox.for_oracle(settings.outbox_dir, self.me, deployment.deployment_id)
        self.recorder = EventRecorder(client, identity, self.outbox)
        base = settings.home / "controller" / deployment.deployment_id
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.index = Indexer(base / "index.sqlite", client.rpc, deployment, contract_abis())
        self.isolations: dict[int, Isolation] = {}
        self._done = self._steps_in_outbox()
        self.tally = IntrusionTally()
        self._chain_view: dict[str, tuple[float, Any]] = {}
        self.quarantines = self._quarantines_in_outbox()

    def close(self) -> None:
        self.index.close()
        self.outbox.close()

    def _steps_in_outbox(self) -> dict[int, dict[str, tuple[int, dict[str, Any]]]]:
        done: dict[int, dict[str, tuple[int, dict[str, Any]]]] = {}
        for row in self.outbox.rows_of_kinds(sorted(STEP_KINDS.values())):
            try:
                body = json.loads(row.payload)
                done.setdefault(int(body["proposal"]), {})[str(body["step"])] = (row.seq, body)
            except (ValueError, KeyError, TypeError):
                continue
        return done

    def _quarantines_in_outbox(self) -> dict[str, Quarantine]:
        found: dict[str, Quarantine] = {}
        for row in self.outbox.rows_of_kinds([SENSOR_QUARANTINE]):
            try:
                body = json.loads(row.payload)
                key = f"{body['sector']}|{body['sensor']}"
                if body["state"] == "quarantined":
                    found[key] = Quarantine(str(body["sector"]), str(body["sensor"]), str(body["asset"]),
                                            str(body["node"]), [(str(o), int(s)) for o, s in body["evidence"]],
                                            seq=row.seq, due=float(body["due"]))
                elif key in found:
                    found[key].lifted = True
            except (ValueError, KeyError, TypeError):
                continue
        return found

    # --- reading decisions from the chain ---------------------------------------------------------

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
                sector = Sector(from_bytes32(bytes(record[0])))
                steps = dict(self._done.get(pid, {}))
                asset = str(steps["plan"][1]["asset"]) if "plan" in steps else self._asset_cited(pid, node)
                iso = Isolation(pid, node, sector, asset, int(record[2]), steps)
                self.isolations[pid] = iso
                if "dispatched" in iso.steps and "repaired" not in iso.steps:
                    self.crews.hold(str(iso.steps["dispatched"][1]["crew"]), str(pid))
        return [i for i in self.isolations.values() if not i.finished], reintegrations

    # --- the loop -----------------------------------------------------------------------------------

    def run_once(self) -> None:
        """Sync with the chain and take every isolation as far as it can go now."""
        self.index.sync()
        open_isolations, reintegrations = self._discover()
        for iso in sorted(open_isolations, key=lambda i: (-i.criticality, i.proposal)):
            self._advance(iso)
        for pid, node in reintegrations:
            # only a reintegration decided after this isolation counts (ids grow; an older one closed an older cycle)
            waiting = next((i for i in open_isolations
                            if i.node == node and "repaired" in i.steps and pid > i.proposal), None)
            if waiting is not None and not waiting.finished:
                self._reintegrate(waiting, pid)
        self._respond_to_intrusions()

    # --- spoofed sensors (controller.cyber) --------------------------------------------------------

    def _respond_to_intrusions(self) -> None:
        self.tally.read(self.index.db, INTRUSION)
        named = {o for by in self.tally.named.values() for o in by}
        if not any(q.key not in self.quarantines for q in self.tally.quorate(named, {s: 2 for s, _ in self.tally.named})):
            fresh: list[Quarantine] = []  # no sensor named by two oracles yet: nothing to ask the chain
        else:
            required = self._required_votes()
            fresh = [q for q in self.tally.quorate(self._active_oracles(), required) if q.key not in self.quarantines]
        for q in fresh:
            q.due = self._clock() + TECHNICIAN_S / self.speed
            q.seq = self._record_quarantine(q, "quarantined", evidence=[list(e) for e in q.evidence],
                                            required=self._required_votes()[q.sector], due=q.due,
                                            technician_s=TECHNICIAN_S)
            self.quarantines[q.key] = q
        for q in self.quarantines.values():
            if not q.lifted and self._clock() >= q.due:
                ack = self.commander.control(Sector(q.sector), SimControl(op="clear-attack", target=q.sensor))
                self._record_quarantine(q, "lifted", quarantine=q.seq, field_ok=ack.ok, field_error=ack.error)
                q.lifted = True

    def _record_quarantine(self, q: Quarantine, state: str, **fields: Any) -> int:
        body = {"state": state, "sector": q.sector, "sensor": q.sensor, "asset": q.asset, "node": q.node, **fields}
        seq = self.recorder.record(SENSOR_QUARANTINE, to_bytes32(q.node or q.asset), canonical_payload(body))
        log_line(f"controller-sensor-{state}", sector=q.sector, sensor=q.sensor, node=q.node, seq=seq)
        return seq

    def _active_oracles(self) -> dict[str, str]:
        """Each named oracle that is Active, with its registry sector's name."""
        named = {o for by in self.tally.named.values() for o in by}
        out: dict[str, str] = {}
        for o in named:
            status, sector = self._cached(f"oracle:{o}", partial(self._oracle_record, o))
            if status == 1:
                out[o] = sector
        return out

    def _required_votes(self) -> dict[str, int]:
        sectors = {sector for sector, _ in self.tally.named}
        return {s: self._cached(f"required:{s}", partial(self._required, s)) for s in sectors}

    def _oracle_record(self, oracle: str) -> tuple[int, str]:
        record = self.client.call1("Registry", "oracle", to_checksum(oracle))
        try:
            sector = from_bytes32(bytes(record[0]))
        except KeysError:
            sector = ""
        return int(record[4]), sector

    def _required(self, sector: str) -> int:
        return int(self.client.call1("IsolationQuorum", "requiredVotes", to_bytes32(sector)))

    def _cached(self, key: str, read: Callable[[], _T], ttl_s: float = 5.0) -> _T:
        """A chain view read at most every `ttl_s` (the loop runs twice a second; statuses change rarely)."""
        cached = self._chain_view.get(key)
        if cached is not None and time.monotonic() - cached[0] <= ttl_s:
            return cast(_T, cached[1])
        value = read()
        self._chain_view[key] = (time.monotonic(), value)
        return value

    def _record(self, iso: Isolation, step: str, **fields: Any) -> int:
        body = {"proposal": iso.proposal, "step": step, "node": iso.node, "asset": iso.asset, **fields}
        seq = self.recorder.record(STEP_KINDS[step], to_bytes32(iso.node), canonical_payload(body))
        iso.steps[step] = (seq, body)
        log_line(f"controller-{step}", proposal=iso.proposal, node=iso.node, asset=iso.asset, seq=seq)
        return seq

    def _send(self, commands: list[ActuatorCommand]) -> list[dict[str, Any]]:
        """Send commands (in order, all at once) and wait for every answer; a refusal or silence raises
        and the step is retried (devices answer a repeat with "already")."""
        return self._required_acks(commands, self.commander.send_all(commands, timeout_s=COMMAND_TIMEOUT_S))

    @staticmethod
    def _required_acks(commands: list[ActuatorCommand], answers: list[Ack | None]) -> list[dict[str, Any]]:
        for command, ack in zip(commands, answers, strict=True):
            if ack is None:
                raise CommandTimeout(f"no acknowledgement for {command.actuator_id} {command.action} "
                                     f"within {COMMAND_TIMEOUT_S:g} s")
            if not (ack.ok or ack.already):
                raise QeaimsError(f"{command.actuator_id} {command.action} refused: {ack.error}")
        return [_ack(c, a) for c, a in zip(commands, answers, strict=True)]

    def _optional_acks(self, posted: list[ActuatorCommand]) -> list[dict[str, Any]]:
        """Answers to posted protective commands for other sectors' devices: a refusal or a device
        that does not answer (its sector may not be running) is recorded, never fatal."""
        offline = self.commander.offline(c.sector for c in posted)  # one reading serves the wait and the record
        answers = self.commander.answers(posted, timeout_s=OPTIONAL_TIMEOUT_S, skip=offline)
        return [_ack(c, a, online=c.sector not in offline) for c, a in zip(posted, answers, strict=True)]

    def _plan(self, iso: Isolation) -> None:
        """Record the isolate and restore plans; a plan the model cannot make is recorded as such."""
        cited = iso.asset
        try:
            isolate = self.planner(iso.sector, "isolate", iso.asset, ())
            if isolate is not None:
                iso.asset = isolate.target  # the planner may narrow the cited asset (a feeder → its faulted line)
            restore = self.planner(iso.sector, "restore", iso.asset,
                                   _commands(isolate.summary() if isolate else None))
        except ChainError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model failure must not stall the city's other isolations
            iso.asset = cited
            log_line("controller-plan-failed", proposal=iso.proposal, node=iso.node, asset=cited,
                     error=f"{type(exc).__name__}: {exc}")
            self._record(iso, "plan", cited=cited, isolate=None, restore=None,
                         error=f"{type(exc).__name__}: {exc}"[:500])
            return
        self._record(iso, "plan", cited=cited, isolate=isolate.summary() if isolate else None,
                     restore=restore.summary() if restore else None)

    def _advance(self, iso: Isolation) -> None:
        if "plan" not in iso.steps:
            self._plan(iso)
        if "cascade" not in iso.steps:
            from sectors.graph import at_risk

            risks = at_risk(iso.node)[:10]
            self._record(iso, "cascade", at_risk=[
                {"node": r.node, "sector": r.sector, "criticality": r.criticality,
                 "minutes_to_impact": round(r.time_to_impact_s / 60, 1)} for r in risks],
                protect=[p.summary() for p in protections(risks)])
        if "applied" not in iso.steps:
            plan, plan_seq = iso.steps["plan"][1], iso.steps["plan"][0]
            cascade_seq = iso.steps["cascade"][0]
            isolate = [_command(iso.sector, c, f"proposal:{iso.proposal}") for c in _commands(plan.get("isolate"))]
            acks = self._send(isolate)  # the faulted part is cut off before anything is switched back on
            protect = [_command(Sector(str(p["command"]["sector"])), p["command"], f"event:{self.me}:{cascade_seq}")
                       for p in iso.steps["cascade"][1].get("protect", []) if p.get("command")]
            restore = [_command(iso.sector, c, f"event:{self.me}:{plan_seq}") for c in _commands(plan.get("restore"))]
            # protective and restore commands go out together: each device takes its own in order at its
            # next step, so a plan of n switchings costs one device step, not n; the restore answers are
            # awaited first, and a protected sector whose device is silent costs at most a few seconds more
            self.commander.post(protect + restore)
            acks += self._required_acks(restore, self.commander.answers(restore, timeout_s=COMMAND_TIMEOUT_S))
            protected = self._optional_acks(protect)
            self._record(iso, "applied", acks=acks, protected=protected)
        if "dispatched" not in iso.steps:
            job = self.crews.assign(iso.sector, str(iso.proposal))
            if job is None:
                return  # every crew of the sector is busy: this isolation waits its turn
            try:
                self.client.transact(self.identity.account, "IsolationQuorum", "beginRepair", to_bytes32(iso.node))
            except ContractRejected as exc:
                if exc.error != "QuorumNodeNotInState":  # already repairing: a resumed dispatch
                    raise
            due = self._clock() + job.total_s / self.speed
            self._record(iso, "dispatched", crew=job.crew, travel_s=job.travel_s, repair_s=job.repair_s, due=due)
        if "repaired" not in iso.steps and self._clock() >= float(iso.steps["dispatched"][1]["due"]):
            # the crew's work, in the simulated field; a device with no fault there answers with an error,
            # which is recorded (the oracles' reintegration vote is the real check of the repair)
            ack = self.commander.control(iso.sector, SimControl(op="clear-fault", target=iso.asset))
            self.crews.release(str(iso.proposal))
            # `at`: the field's clock when the repair took effect; the oracles verify it on readings from then on
            self._record(iso, "repaired", crew=iso.steps["dispatched"][1]["crew"], field_ok=ack.ok,
                         field_error=ack.error, **({"at": ack.at} if ack.at else {}))

    def _reintegrate(self, iso: Isolation, proposal: int) -> None:
        planned = iso.steps["plan"][1]
        error = ""
        try:
            plan = self.planner(iso.sector, "reintegrate", iso.asset,
                                _commands(planned.get("isolate")) + _commands(planned.get("restore")))
        except ChainError:
            raise
        except Exception as exc:  # noqa: BLE001 - as in `_plan`: recorded, and the node still comes back
            plan, error = None, f"{type(exc).__name__}: {exc}"[:500]
            log_line("controller-plan-failed", proposal=iso.proposal, node=iso.node, asset=iso.asset, error=error)
        commands = [_command(iso.sector, c, f"proposal:{proposal}") for c in _commands(plan.summary() if plan else None)]
        undo = [_command(Sector(str(a["sector"])), inverse(a), f"proposal:{proposal}")
                for a in iso.steps.get("applied", (0, {}))[1].get("protected", [])
                if may_have_acted(a)]  # undo what this isolation may have changed (a late device did act)
        self.commander.post(commands + undo)
        acks = self._required_acks(commands, self.commander.answers(commands, timeout_s=COMMAND_TIMEOUT_S))
        self._record(iso, "reintegrated", reintegration=proposal, acks=acks,
                     unprotected=self._optional_acks(undo), **({"error": error} if error else {}))


def to_checksum(address: str) -> str:
    return str(Web3.to_checksum_address(address))


def _ack(command: ActuatorCommand, ack: Ack | None, *, online: bool = True) -> dict[str, Any]:
    """How a device answered one command, as recorded on-chain; `answer` is what
    `chain.commanded.may_have_acted` reads (acked, already, refused, silent or offline), `at` the
    field's own clock when it acted (oracles settle a reintegrated node from that moment on)."""
    if ack is None:
        answer: Answer = "silent" if online else "offline"
        error = SILENT if online else f"no {command.sector.value} device online"
    else:
        answer = "already" if ack.already else "acked" if ack.ok else "refused"
        error = ack.error
    return {"sector": command.sector.value, "asset": command.asset_id, "actuator": command.actuator_id,
            "action": command.action, "what": f"{command.actuator_id} {command.action}",
            "ok": ack is not None and (ack.ok or ack.already), "already": ack is not None and ack.already,
            "answer": answer, "error": error, **({"at": ack.at} if ack is not None and ack.at else {})}


def _commands(plan: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [] if plan is None else list(plan["commands"])


def _command(sector: Sector, spec: dict[str, Any], ref: str) -> ActuatorCommand:
    return ActuatorCommand(sector=sector, asset_id=str(spec["asset"]), actuator_id=str(spec["actuator"]),
                           action=str(spec["action"]), value=spec.get("value"), decision_ref=ref)
