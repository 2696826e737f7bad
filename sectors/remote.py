"""A running twin takes commands like a field device: over MQTT, and only for decisions on-chain.

Topics (beside the readings' ``qeaims/<sector>/...``):

- ``qeaims-cmd/<sector>``: an `ActuatorCommand` as JSON, from the controller. Its ``decision_ref``
  names the on-chain decision it carries out, and the twin checks that decision on the chain
  before it moves anything (`chain_decision_check`): ``proposal:<id>`` must be an *executed*
  isolation-quorum proposal; ``event:<address>:<seq>`` must be a recorded ledger event (a plan the
  controller signed and recorded before acting). A command without one is refused. This is the
  edge half of "no isolation without quorum": even a compromised controller cannot switch a device
  the chain has not decided about.
- ``qeaims-sim/<sector>``: simulation controls (`SimControl`: inject or clear a fault or an attack,
  set rain). Only a twin has this topic; it is how scenarios and tests break things.
- ``qeaims-ack/<sector>``: one result per command or control (`ok`, `error`, the twin's clock), so
  the sender learns what happened without reading the twin's log.
- ``qeaims-svc/<sector>``: the twin's service level after each report period (`sectors.service`:
  ``sector``, ``at``, ``availability``, ``customers_affected``, ``critical_affected``, ``detail``),
  QoS 0: ground truth for a scenario's KPIs, never seen by the oracles.

Commands and controls are queued by the MQTT thread and carried out between report periods by the
thread that steps the twin, so a twin is never changed in the middle of a solve.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from chain.client import ChainClient
from core.errors import ChainError
from core.messages import ActuatorCommand, AttackKind, FaultKind, Sector

__all__ = [
    "DecisionCheck",
    "SimControl",
    "ack_payload",
    "ack_topic",
    "chain_decision_check",
    "cmd_topic",
    "parse_command",
    "parse_control",
    "sim_topic",
    "svc_topic",
]

DecisionCheck = Callable[[ActuatorCommand], "str | None"]  # None: allowed; else why not


def cmd_topic(sector: Sector) -> str:
    return f"qeaims-cmd/{sector.value}"


def sim_topic(sector: Sector) -> str:
    return f"qeaims-sim/{sector.value}"


def ack_topic(sector: Sector) -> str:
    return f"qeaims-ack/{sector.value}"


def svc_topic(sector: Sector) -> str:
    """Where a running twin publishes its service level each report period (`sectors.service`)."""
    return f"qeaims-svc/{sector.value}"


class SimControl(BaseModel):
    """One simulation control; `params` are passed to the twin's method as keyword arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal["inject-fault", "clear-fault", "inject-attack", "clear-attack", "set-rain"]
    target: str = ""  # asset (faults) or sensor id (attacks)
    kind: str = ""  # a FaultKind or AttackKind value
    params: dict[str, float | int | str | None] = {}

    def apply_to(self, twin: Any) -> object:
        """Carry the control out on `twin` (the sector's own twin object)."""
        if self.op == "inject-fault":
            return twin.inject_fault(FaultKind(self.kind), self.target, **self.params)
        if self.op == "clear-fault":
            return twin.clear_fault(self.target, **self.params)
        if self.op == "inject-attack":
            return twin.inject_attack(AttackKind(self.kind), self.target, **self.params)
        if self.op == "clear-attack":
            return twin.clear_attack(self.target)
        rain = self.params.get("mm_per_h")
        if not hasattr(twin, "set_rain"):
            raise ValueError("only the sewage twin has rain")
        if not isinstance(rain, int | float):
            raise TypeError("set-rain needs params.mm_per_h (a number)")
        return twin.set_rain(float(rain))


def parse_command(payload: bytes, sector: Sector) -> ActuatorCommand:
    try:
        command = ActuatorCommand.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"not an actuator command: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if command.sector is not sector:
        raise ValueError(f"a {command.sector.value} command on the {sector.value} twin's topic")
    return command


def parse_control(payload: bytes) -> SimControl:
    try:
        control = SimControl.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"not a simulation control: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if control.op in ("inject-fault", "inject-attack"):
        kinds = FaultKind if control.op == "inject-fault" else AttackKind
        if control.kind not in {k.value for k in kinds}:
            raise ValueError(f"unknown {control.op[7:]} kind {control.kind!r}: "
                             f"choose one of {', '.join(k.value for k in kinds)}")
    return control


_PROPOSAL = re.compile(r"proposal:([0-9]{1,20})")
_EVENT = re.compile(r"event:(0x[0-9a-fA-F]{40}):([0-9]{1,20})")
_EXECUTED = 2  # IsolationQuorum.ProposalState.Executed


def chain_decision_check(client: ChainClient) -> DecisionCheck:
    """Allow a command only if its decision_ref names an executed proposal or a recorded event."""

    def check(command: ActuatorCommand) -> str | None:
        ref = command.decision_ref
        try:
            if m := _PROPOSAL.fullmatch(ref):
                state = int(client.call1("IsolationQuorum", "proposalState", int(m.group(1))))
                return None if state == _EXECUTED else f"proposal {m.group(1)} is not executed on-chain"
            if m := _EVENT.fullmatch(ref):
                last = int(client.call1("EventLedger", "lastSeq", m.group(1)))
                return None if int(m.group(2)) <= last else f"event {m.group(2)} of {m.group(1)} is not on-chain"
        except ChainError as exc:
            return f"cannot check {ref} on the chain: {exc}"
        return (f"decision_ref {ref!r} names no on-chain decision: use proposal:<id> or event:<address>:<seq>"
                if ref else "no decision_ref: a device acts only on a decision recorded on-chain")

    return check


def ack_payload(*, ref: str, what: str, ok: bool, error: str, at: str) -> bytes:
    return json.dumps({"ref": ref, "what": what, "ok": ok, "error": error, "at": at}, sort_keys=True).encode()
