"""Banking responses: fail over to the standby data centre, drain a failed ATM cluster, fail back.

The switch routes every transaction to one data centre. When the active one fails (outage,
equipment failure, or a power loss that will outlast its UPS) the switch fails over to the other,
if that one is up; the switch serves nothing for the fail-over time (the recovery-time objective),
which is why the plan says how long. A failed ATM cluster is drained: its customers go to the
clusters still up instead of failing at the machine. The switch itself has no standby; the one
load it can shed is a fraud-like burst, by a per-source rate limit that legitimate sources stay
under. Reintegration fails back to the primary, returns the cluster to service, clears the limit.
"""

from __future__ import annotations

from controller.plans import ResponsePlan
from core.messages import ActuatorCommand, Sector
from sectors._twin import UnknownAsset
from sectors.banking import BankingTwin

from ._responses_common import make_plan, require_repaired

__all__ = ["RATE_LIMIT_TPS", "TWIN", "isolate_plan", "reintegrate_plan", "restore_plan"]

TWIN = BankingTwin
_S = Sector.BANKING
RATE_LIMIT_TPS = 2.0
"""Transactions per second allowed per source while the switch is protected (a card or terminal
makes far fewer; a burst from a handful of sources makes hundreds)."""
_DOWN = 0


def _kind(twin: BankingTwin, target: str) -> str:
    spec = twin.spec
    if target == spec.switch_id:
        return "switch"
    if target in (spec.primary.dc_id, spec.standby.dc_id):
        return "dc"
    if target in {c.cluster_id for c in spec.atm_clusters}:
        return "atm"
    raise UnknownAsset(f"no banking asset {target!r}; assets: {', '.join(twin.assets)}")


def _impact(twin: BankingTwin) -> dict[str, float | int | str]:
    service = twin.service()
    return {
        "availability_now": round(service.availability_now, 4),
        "failed_transactions": service.failed_transactions,
        "active_dc": service.active_dc,
        "failover_s": twin.spec.failover_s,
    }


def _route(twin: BankingTwin, target: str) -> tuple[list[ActuatorCommand], str]:
    """Move the switch off ``target`` if it is the active DC and the other one is up."""
    service = twin.service()
    spec = twin.spec
    other = spec.standby.dc_id if target == spec.primary.dc_id else spec.primary.dc_id
    if service.active_dc != target:
        return [], f"{target} is not the active data centre ({service.active_dc} is): no reroute needed"
    if service.dc_status.get(other) == _DOWN:
        return [], f"{other} is down too: no data centre to fail over to"
    action = "failover" if other == spec.standby.dc_id else "failback"
    return [twin.command(f"{spec.switch_id}/route", action)], (
        f"route the switch to {other} ({spec.failover_s:.0f} s without service while it takes over)")


def isolate_plan(twin: BankingTwin, target: str) -> ResponsePlan:
    kind = _kind(twin, target)
    if kind == "dc":
        commands, reason = _route(twin, target)
    elif kind == "atm":
        commands = [twin.command(f"{target}/mode", "drain")]
        reason = f"drain {target}: its customers move to the ATM clusters still up"
    else:
        commands = [twin.command(f"{target}/ratelimit", "limit", RATE_LIMIT_TPS)]
        reason = (f"{target} has no standby: limit each source to {RATE_LIMIT_TPS:g} tps to shed a burst "
                  "(legitimate sources stay under it)")
    return make_plan(_S, target, "isolate", commands, _impact(twin), reason)


def restore_plan(twin: BankingTwin, target: str) -> ResponsePlan:
    _kind(twin, target)
    return make_plan(_S, target, "restore", (), _impact(twin),
                     "the fail-over or drain already carries the service around the isolated asset")


def reintegrate_plan(twin: BankingTwin, target: str) -> ResponsePlan:
    kind = _kind(twin, target)
    require_repaired(_S, target, twin.faults)
    spec = twin.spec
    commands: list[ActuatorCommand] = []
    if kind == "dc":
        reason = f"{target} is repaired"
        if target == spec.primary.dc_id and twin.service().active_dc == spec.standby.dc_id:
            commands.append(twin.command(f"{spec.switch_id}/route", "failback"))
            reason += f": fail back to it ({spec.failover_s:.0f} s without service, best done off-peak)"
    elif kind == "atm":
        commands.append(twin.command(f"{target}/mode", "restore"))
        reason = f"{target} is repaired: back in service"
    else:
        commands.append(twin.command(f"{target}/ratelimit", "clear"))
        reason = f"{target} is healthy: lift the per-source limit"
    return make_plan(_S, target, "reintegrate", commands, _impact(twin), reason)
