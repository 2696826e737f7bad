"""The steps of one isolation, each recorded on-chain before the next (part of `controller.node`).

For each isolation the quorum executed (`ProposalExecuted`, action Isolate) the controller walks
these steps, each one a hybrid-signed event from its own registered identity:

1. ``plan`` (``reroute-plan``): the sector's isolate plan, for the asset named by the fault verdict
   the proposal cites as evidence. A plan the model cannot make (the planner raised) is recorded
   with its ``error`` and no commands: the isolation still goes on to protection, dispatch and
   repair, and one bad plan never stalls the other isolations. Plans are made by a worker thread of
   the sector (`controller._plan_workers`), so a slow one holds up no other sector.
2. ``cascade`` (``cascade-analysis``): what else the isolated node puts at risk (`sectors.graph`),
   ranked by criticality and time to impact, and what the controller does about each one before
   the failure reaches it (`controller.protect`: backup transfer, draining, fail-over, diversion).
3. ``applied`` (``isolation-applied``): the isolate commands sent with ``decision_ref
   proposal:<id>`` and the protective commands with ``event:<controller>:<cascade seq>``; the
   devices (twins) check those references on the chain before they move, and each answers with an
   ack. A refused protective command is recorded, not fatal: the isolation must go ahead even if a
   neighbour cannot help. This is the city's response (the scenario's cross-system response KPI).
   ``restore-plan`` (``reroute-plan``) and ``restored`` (``isolation-applied``): the restore plan,
   made meanwhile on a model with the isolate commands applied, and its commands sent with
   ``event:<controller>:<restore-plan seq>`` (but for those another open isolation holds,
   ``held``: `controller._holds`). The response does not wait for it: the storm day's traffic
   restore plan (five signal timings simulated five minutes ahead) took 45 wall seconds under load,
   and the crash's barrier and every dependant's protection waited behind it. An isolation recorded
   by an earlier version, whose ``plan`` held the restore plan too, is applied as it was then.
4. ``dispatched`` (``repair-dispatched``): a crew is assigned (most critical node first when crews
   are short) and the node moves to *repairing* on-chain (`beginRepair`, REPAIR_ROLE).
5. ``repaired`` (``repaired``): when the crew's time is up (and the restoration has been applied),
   the fault is cleared in the field.
6. ``reintegrated`` (``reintegrated``): only after the oracles' reintegration quorum executed
   (`ProposalExecuted`, action Reintegrate), the reintegrate plan's commands and the inverse of
   every protective command that was carried out are sent with that proposal as their decision.
   What another open isolation still holds waits (``held``), and goes out with the reintegration
   that ends the last hold on it (``released``; `controller._holds`).

This module is the walk itself (`_advance`, then `_reintegrate`); `controller.node` finds the
isolations and reintegrations on the chain and hands each one here, most critical first.
"""

from __future__ import annotations

from typing import Any

from chain.commanded import SILENT, Answer, may_have_acted
from chain.recorder import canonical_payload
from controller._controller_state import (
    COMMAND_TIMEOUT_S,
    OPTIONAL_TIMEOUT_S,
    STEP_KINDS,
    ControllerState,
    Isolation,
    log_line,
)
from controller._holds import command_key, holders, pending, planned
from controller.commander import Ack, CommandTimeout
from controller.deadlines import Deadline
from controller.protect import inverse, protections
from core.errors import ChainError, ContractRejected, QeaimsError
from core.messages import ActuatorCommand, Sector
from keys.ids import to_bytes32
from sectors.remote import SimControl

__all__ = ["IsolationSteps"]


class IsolationSteps(ControllerState):
    """plan → cascade → applied → dispatched → repaired, then reintegrated once the quorum decides."""

    def _record(self, iso: Isolation, step: str, **fields: Any) -> int:
        body = {"proposal": iso.proposal, "step": step, "node": iso.node, "asset": iso.asset, **fields}
        # noted as done once durable (what a restart would read back), then sent: a chain error in the
        # send only delays it (the next pass flushes first), it never makes the step run twice
        seq = self.recorder.write_ahead(STEP_KINDS[step], to_bytes32(iso.node), canonical_payload(body))
        iso.steps[step] = (seq, body)
        log_line(f"controller-{step}", proposal=iso.proposal, node=iso.node, asset=iso.asset, seq=seq)
        self.recorder.flush()
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

    def _planned(self, iso: Isolation, step: str, purpose: str, sent: list[dict[str, Any]]) -> bool:
        """Record the `purpose` plan as `step` once the sector's worker has made it (False until then).

        A plan the model cannot make (the planner raised) is recorded with its ``error`` and no
        commands: the isolation still goes on, and one bad plan never stalls the other isolations.
        """
        done = self.plans.ask((iso.proposal, step), iso.sector, purpose, iso.asset, sent)
        if done is None:
            return False  # still being made: the loop goes on with the other isolations
        key = "isolate" if step == "plan" else "restore"
        if done.error is not None:
            if isinstance(done.error, ChainError):
                raise done.error
            error = f"{type(done.error).__name__}: {done.error}"
            log_line("controller-plan-failed", proposal=iso.proposal, node=iso.node, asset=iso.asset, step=step,
                     error=error)
            self._record(iso, step, cited=iso.asset, **{key: None}, error=error[:500])
            return True
        cited, plan = iso.asset, done.plan
        if plan is not None and step == "plan":
            iso.asset = plan.target  # the planner may narrow the cited asset (a feeder → its faulted line)
        self._record(iso, step, cited=cited, **{key: plan.summary() if plan else None})
        return True

    def _advance(self, iso: Isolation) -> None:
        if "plan" not in iso.steps and not self._planned(iso, "plan", "isolate", []):
            return
        if "cascade" not in iso.steps:
            from sectors.graph import at_risk

            risks = at_risk(iso.node)[:10]
            self._record(iso, "cascade", at_risk=[
                {"node": r.node, "sector": r.sector, "criticality": r.criticality,
                 "minutes_to_impact": round(r.time_to_impact_s / 60, 1)} for r in risks],
                protect=[p.summary() for p in protections(risks)])
        if "applied" not in iso.steps:
            cascade_seq = iso.steps["cascade"][0]
            plan = iso.steps["plan"][1]
            isolate = [_command(iso.sector, c, f"proposal:{iso.proposal}") for c in _commands(plan.get("isolate"))]
            protect = [_command(Sector(str(p["command"]["sector"])), p["command"], f"event:{self.me}:{cascade_seq}")
                       for p in iso.steps["cascade"][1].get("protect", []) if p.get("command")]
            if _restore_in_plan(plan):  # recorded by an earlier version: isolate and restore in one step
                self._apply_with_restore(iso, isolate, protect)
            else:
                # the faulted part is cut off first; the dependants' protections go out at once after,
                # and this step (the city's response) does not wait for the restore plan, made meanwhile
                acks = self._send(isolate)
                self.commander.post(protect)
                self._record(iso, "applied", acks=acks, protected=self._optional_acks(protect))
        if _restore_due(iso):
            self._restore(iso)
        if "dispatched" not in iso.steps:
            job = self.crews.assign(iso.sector, str(iso.proposal))
            if job is None:
                return  # every crew of the sector is busy: this isolation waits its turn
            try:
                self.client.transact(self.identity.account, "IsolationQuorum", "beginRepair", to_bytes32(iso.node))
            except ContractRejected as exc:
                if exc.error != "QuorumNodeNotInState":  # already repairing: a resumed dispatch
                    raise
            due = Deadline.after(job.total_s, sector=Sector(iso.sector), wall_now=self._clock(), speed=self.speed,
                                 field_clock=self.field_clock)
            self._record(iso, "dispatched", crew=job.crew, travel_s=job.travel_s, repair_s=job.repair_s,
                         **due.as_fields())
        if "repaired" not in iso.steps and Deadline.of(iso.steps["dispatched"][1]).passed(
                sector=Sector(iso.sector), wall_now=self._clock(), field_clock=self.field_clock) \
                and not (_restore_due(iso) and "restored" not in iso.steps):
            # the crew's work, in the simulated field (after the restoration around the fault: a restore
            # planned for the faulted field must not arrive after the fault is gone); a device with no
            # fault there answers with an error, which is recorded (the oracles' reintegration vote is
            # the real check of the repair)
            ack = self.commander.control(iso.sector, SimControl(op="clear-fault", target=iso.asset))
            self.crews.release(str(iso.proposal))
            # `at`: the field's clock when the repair took effect; the oracles verify it on readings from then on
            self._record(iso, "repaired", crew=iso.steps["dispatched"][1]["crew"], field_ok=ack.ok,
                         field_error=ack.error, **({"at": ack.at} if ack.at else {}))

    def _restore(self, iso: Isolation) -> None:
        """``restore-plan`` then ``restored``: service brought back around the isolated asset, on a plan
        made by the sector's worker on a fresh model with the isolate commands already applied; what
        another open isolation holds is not switched back (``held``, `controller._holds`)."""
        if "restore-plan" not in iso.steps and not self._planned(
                iso, "restore-plan", "restore", _commands(iso.steps["plan"][1].get("isolate"))):
            return
        if "restored" in iso.steps:
            return
        plan_seq, plan = iso.steps["restore-plan"]
        restore, held = self._unheld(iso, _commands(plan.get("restore")), f"event:{self.me}:{plan_seq}")
        answers = self.commander.send_all(restore, timeout_s=COMMAND_TIMEOUT_S)
        if any(a is None for a in answers):  # silence: the device may be back next pass, the step is retried
            self._required_acks(restore, answers)
        # a refusal is recorded and passed, as a refused protection is: the restore only brings service
        # back around the cut, and a command refused for good must not hold up the crew, the repair and
        # every isolation behind it (a refused answer holds nothing, `chain.commanded`)
        acks = [_ack(c, a) for c, a in zip(restore, answers, strict=True)]
        for refused in (a for a in acks if a["answer"] == "refused"):
            log_line("controller-restore-refused", proposal=iso.proposal, node=iso.node, what=refused["what"],
                     error=refused["error"])
        self._record(iso, "restored", acks=acks, **({"held": held} if held else {}))

    def _unheld(self, iso: Isolation, specs: list[dict[str, Any]],
                ref: str) -> tuple[list[ActuatorCommand], list[dict[str, Any]]]:
        """The restore commands to send under `ref`, and those another open isolation holds (not sent)."""
        held: list[dict[str, Any]] = []
        for spec in specs:
            by = holders(self.isolations.values(), iso, {"sector": iso.sector.value, **spec})
            if by:
                held.append({**spec, "held_by": by})
        return [_command(iso.sector, c, ref) for c in specs
                if not any(h["actuator"] == c["actuator"] and h["action"] == c["action"] for h in held)], held

    def _apply_with_restore(self, iso: Isolation, isolate: list[ActuatorCommand],
                            protect: list[ActuatorCommand]) -> None:
        """The ``applied`` step of an isolation planned by an earlier version (its ``plan`` holds the
        restore plan too): isolate, then protections and restore together, as that version did."""
        plan_seq, plan = iso.steps["plan"]
        acks = self._send(isolate)
        restore, held = self._unheld(iso, _commands(plan.get("restore")), f"event:{self.me}:{plan_seq}")
        self.commander.post(protect + restore)
        acks += self._required_acks(restore, self.commander.answers(restore, timeout_s=COMMAND_TIMEOUT_S))
        self._record(iso, "applied", acks=acks, protected=self._optional_acks(protect), restore_in_step=True,
                     **({"held": held} if held else {}))

    def _held_by_others(self, iso: Isolation, spec: dict[str, Any]) -> bool:
        """Whether undoing the protection `spec` that `iso` carried out must wait (`controller._holds`)."""
        return bool(holders(self.isolations.values(), iso, inverse(spec), protected=_protected(iso, spec)))

    def _reintegrate(self, iso: Isolation, proposal: int) -> None:
        """Send the reintegrate plan, the undo of this isolation's protections and the commands that
        earlier reintegrations left waiting for it; what another open isolation still holds waits in
        turn (`controller._holds`). One command a device per batch: an undo that is also in the plan
        goes once (a device refuses a decision's repeat)."""
        done = self.plans.ask((iso.proposal, f"reintegrate:{proposal}"), iso.sector, "reintegrate", iso.asset,
                              planned(iso))  # made on a model where what was sent has been applied
        if done is None:
            return  # the sector's worker is still making it
        plan, error = done.plan, ""
        if done.error is not None:  # as in `_planned`: recorded, and the node still comes back
            if isinstance(done.error, ChainError):
                raise done.error
            error = f"{type(done.error).__name__}: {done.error}"[:500]
            log_line("controller-plan-failed", proposal=iso.proposal, node=iso.node, asset=iso.asset, error=error)
        others = self.isolations.values()
        held: list[dict[str, Any]] = []

        def waits(spec: dict[str, Any], of: str, protected: list[str]) -> bool:
            by = holders(others, iso, spec, protected=protected)
            if by:
                held.append({**spec, "of": of, "protected": protected, "held_by": by})
            return bool(by)

        reintegrate = [s for s in ({"sector": iso.sector.value, **c} for c in _commands(plan.summary() if plan else None))
                       if not waits(s, "plan", [])]
        undo = [_undo(a) for a in iso.steps.get("applied", (0, {}))[1].get("protected", [])
                if may_have_acted(a)  # undo what this isolation may have changed (a late device did act)
                and not waits(_undo(a), "protection", _protected(iso, a))]
        due = [(source.proposal, h) for source, h in pending(others)
               if not holders(others, iso, h, protected=list(h.get("protected", [])))]
        commands = [_command(iso.sector, s, f"proposal:{proposal}") for s in reintegrate]
        once = {command_key(s): s for s in undo + [h for _, h in due] if command_key(s) not in
                {command_key(r) for r in reintegrate}}  # in order, each once
        optional = [_command(Sector(str(s["sector"])), s, f"proposal:{proposal}") for s in once.values()]
        self.commander.post(commands + optional)
        acks = self._required_acks(commands, self.commander.answers(commands, timeout_s=COMMAND_TIMEOUT_S))
        answered = dict(zip([command_key(s) for s in reintegrate], acks, strict=True))
        answered.update(zip(once, self._optional_acks(optional), strict=True))
        self._record(iso, "reintegrated", reintegration=proposal, acks=acks,
                     unprotected=[answered[command_key(s)] for s in undo],
                     **({"held": held} if held else {}),
                     **({"released": [{"from": source, **answered[command_key(h)]} for source, h in due]} if due else {}),
                     **({"error": error} if error else {}))


def _restore_in_plan(plan: dict[str, Any]) -> bool:
    """Whether a ``plan`` step carries the restore plan (recorded before the restore had steps of its own)."""
    return "restore" in plan


def _restore_due(iso: Isolation) -> bool:
    """Whether this isolation restores in steps of its own: planned by this version, and planned at all
    (a failed isolate plan restores nothing; the crew's repair and the reintegration still follow)."""
    plan = iso.steps["plan"][1]
    return not _restore_in_plan(plan) and "error" not in plan


def _protected(iso: Isolation, spec: dict[str, Any]) -> list[str]:
    """The nodes `iso`'s protective command `spec` was for."""
    return sorted({str(p.get("node")) for p in iso.steps.get("cascade", (0, {}))[1].get("protect", [])
                   if p.get("command") and p["command"].get("actuator") == spec.get("actuator")
                   and p["command"].get("action") == spec.get("action")})


def _undo(answer: dict[str, Any]) -> dict[str, Any]:
    """The command that undoes a protective command, from its recorded answer."""
    return {k: v for k, v in inverse(answer).items() if k in ("sector", "asset", "actuator", "action", "value")}


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
