"""Which commands of a reintegration wait for another isolation, and when they go out (part of
`controller._isolation_steps`).

Reintegrating a node sends its reintegrate plan's commands and the inverse of every protection its
isolation carried out. Another isolation still open may need some of those devices where they are:

- feeder 1's loss opened the storm-tank diversion for lift station 1, whose pump then failed and
  whose own plan needed the diversion too. Feeder 1 came back first, and undoing its protection
  closed the gate mid-storm under a station with one pump;
- the other way round, the station's reintegrate plan (a fresh model: feeder 1 up, no need to
  divert) closed the gate while feeder 1 was still out.

So a command **waits** while another open isolation holds its device: that isolation last
commanded the same actuator to another state (its isolate or restore plan, or a protection), or,
for the undo of a protection, the node the protection was for is itself isolated now (its plan,
made on a fresh model, may not have asked for it: a dry model saw no need to divert).

A waiting command is not dropped. It is recorded in the ``reintegrated`` event as ``held`` (with
the isolations holding it) and goes out at the first later reintegration after which nothing holds
it any more, recorded there as ``released`` (``from``: the isolation it belongs to). Feeder 2's
return left hospital 1 on its generator while the hospital was isolated; the hospital's own plan
(a fresh model with the grid up) never asked for the grid back, and the generator ran until its
fuel was gone. Now the hospital's reintegration sends the ``power restore`` feeder 2 left waiting.

The same holds for the restore plan an isolation sends when it is applied (service brought back
around the isolated asset, planned on a fresh model that knows only this fault): line 9's restore
closing the switch line 3's isolation opened around its own fault would re-energise that fault. A
held restore command is recorded in the ``restored`` step (an ``isolation-applied`` event) as ``held`` and is never sent
later: it served a restoration planned for a field that will have changed by the time the holder
comes back (the holder's own reintegrate plan puts that device back). The isolate commands never
wait: the faulted part is cut off whatever else is open.

Why at a reintegration, rather than re-checking every waiting command on each ``run_once``: a
hold is an open isolation's need, so a hold only ends when an isolation is reintegrated, and a
check between reintegrations could never find anything new. The reintegration that ended the last
hold is also the decision that makes the command due: it goes out under that proposal, which the
devices check on the chain, and that one ``reintegrated`` event tells an auditor what came back
and what was returned to normal because of it. Nothing new is kept: what waits and what was
released are in the controller's own events, read back from its outbox after a restart.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from controller._controller_state import Isolation

__all__ = ["command_key", "holders", "pending", "planned", "specs"]


def planned(iso: Isolation) -> list[dict[str, Any]]:
    """The isolate and restore commands an isolation's plan sent (or meant to send), in that order;
    not the restore commands it held back (it never needed those devices moved)."""
    plan = iso.steps.get("plan", (0, {}))[1]
    # the restore plan and what it held: steps of their own, or (recorded by an earlier version) in
    # the ``plan`` and ``applied`` steps
    restore_plan = iso.steps["restore-plan"][1] if "restore-plan" in iso.steps else plan
    sent = iso.steps["restored"][1] if "restored" in iso.steps else iso.steps.get("applied", (0, {}))[1]
    withheld = {(str(h["actuator"]), str(h["action"])) for h in sent.get("held", [])}
    # a restore command its device refused moved nothing: the isolation holds nothing there, and its
    # reintegration must not try to undo it (the oracles read a refusal the same way, `chain.commanded`)
    withheld |= {(str(a["actuator"]), str(a["action"])) for a in sent.get("acks", []) if a.get("answer") == "refused"}
    restore = [c for c in _commands(restore_plan.get("restore"))
               if (str(c["actuator"]), str(c["action"])) not in withheld]
    return _commands(plan.get("isolate")) + restore


def specs(iso: Isolation) -> list[dict[str, Any]]:
    """Every command an isolation's plan and protections sent (or meant to send), in that order."""
    return planned(iso) + list(iso.steps.get("applied", (0, {}))[1].get("protected", []))


def command_key(spec: dict[str, Any]) -> tuple[str, str, str, str]:
    """What makes two commands the same: one device told the same thing (sent once a batch)."""
    return (str(spec.get("sector", "")), str(spec["actuator"]), str(spec["action"]), repr(spec.get("value")))


def _state(spec: dict[str, Any]) -> tuple[str, Any]:
    return str(spec["action"]), spec.get("value")


def holders(isolations: Iterable[Isolation], iso: Isolation, command: dict[str, Any], *,
            protected: Collection[str] = (), exclude: Collection[int] = ()) -> list[int]:
    """The other open isolations that need `command`'s device where they left it, by proposal.

    One holds it when the last thing it commanded that actuator is another state than `command`'s,
    or when it isolates a node in `protected` (the nodes a protection that `command` undoes was for).
    """
    out: list[int] = []
    for other in isolations:
        if other is iso or other.finished or other.proposal in exclude:
            continue
        wanted = [_state(s) for s in specs(other) if s.get("actuator") == command.get("actuator")]
        if other.node in protected or (wanted and wanted[-1] != _state(command)):
            out.append(other.proposal)
    return out


def pending(isolations: Iterable[Isolation]) -> list[tuple[Isolation, dict[str, Any]]]:
    """Held commands of reintegrated isolations that no later reintegration has released yet."""
    done = [i for i in isolations if i.finished]
    released = {(int(r["from"]), str(r["actuator"]), str(r["action"]))
                for i in done for r in i.steps["reintegrated"][1].get("released", [])}
    return [(i, h) for i in done for h in i.steps["reintegrated"][1].get("held", [])
            if (i.proposal, str(h["actuator"]), str(h["action"])) not in released]


def _commands(plan: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [] if plan is None else list(plan["commands"])
