"""Indicators and countermeasures enforced at a sector's gateway: a deny entry per address or client identity
until it expires, a quarantined device's commands refused, safe mode.

`gateway_enforcer` turns an indicator in force into the gateway policy's own countermeasure
(`gateway.Policy.deny`, whose entries lapse at the indicator's expiry even if the feed stops) and
lifts it when the indicator is withdrawn. The kinds a gateway cannot match on its own traffic (a
key fingerprint, a command signature, a spoofing pattern) are for the links and the oracles; this
enforcer counts them as not applicable rather than pretending.
"""

from __future__ import annotations

from chain.countermeasures import CountermeasureRecord
from gateway import Policy, Source
from intel.feed import Enforcer
from intel.indicator import Indicator

__all__ = ["gateway_enforcer", "source_of"]


def source_of(indicator: Indicator) -> Source | None:
    """The deny entry an indicator means at a gateway (None: not a gateway's to match)."""
    if indicator.kind == "source-address":
        return Source(indicator.value)
    if indicator.kind == "client-id":
        return Source("*", client_id=indicator.value)
    return None


def gateway_enforcer(name: str, policy: Policy, sector: str = "") -> Enforcer:
    """Indicators as deny entries; and for ``sector``'s gateways its countermeasures: a quarantined device
    refuses commands (`Policy.quarantine`), safe mode refuses every write (`Policy.safe_mode`)."""
    def apply(indicator: Indicator) -> None:
        source = source_of(indicator)
        if source is not None:
            policy.deny(source, until=indicator.expires)

    def lift(indicator: Indicator) -> None:
        source = source_of(indicator)
        if source is not None:
            policy.lift(source)

    def countermeasure(record: CountermeasureRecord, in_force: bool) -> None:
        kind, device = record.body.get("type"), record.body.get("device")
        if kind == "quarantine-device" and isinstance(device, str):
            if in_force:
                policy.quarantine(device)
            else:
                policy.release(device)
        elif kind == "safe-mode":
            policy.safe_mode(in_force)

    return Enforcer(name, apply=apply, lift=lift, sector=sector, countermeasure=countermeasure if sector else None)
