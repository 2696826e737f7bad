"""Indicators and countermeasures enforced at a sector's gateway: a deny entry per address or client identity
until it expires, a quarantined device's commands refused, safe mode.

`gateway_enforcer` turns an indicator in force into the gateway policy's own countermeasure
(`gateway.Policy.deny`, whose entries lapse at the indicator's expiry even if the feed stops) and
lifts it when the indicator is withdrawn. The kinds a gateway cannot match on its own traffic (a
key fingerprint, a command signature, a spoofing pattern) are for the links and the oracles; this
enforcer counts them as not applicable rather than pretending.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from chain.countermeasures import CountermeasureRecord
from gateway import Policy, Source
from intel.feed import Enforcer
from intel.indicator import Indicator

__all__ = ["gateway_enforcer", "local_elsewhere", "source_of"]


def source_of(indicator: Indicator) -> Source | None:
    """The deny entry an indicator means at a gateway (None: not a gateway's to match)."""
    if indicator.kind == "source-address":
        return Source(indicator.value)
    if indicator.kind == "client-id":
        return Source("*", client_id=indicator.value)
    return None


def local_elsewhere(indicator: Indicator, sector: str) -> bool:
    """A private, loopback or link-local address from another sector: in each utility's own network it names
    another host (water's 10.0.0.5 is not electricity's), so it is enforced in its source sector only."""
    if indicator.kind != "source-address" or indicator.source_sector == sector:
        return False
    return not ipaddress.ip_address(indicator.value).is_global


def gateway_enforcer(name: str, policy: Policy, sector: str = "", *, shared_network: bool = False) -> Enforcer:
    """Indicators as deny entries; and for ``sector``'s gateways its countermeasures: a quarantined device
    refuses commands (`Policy.quarantine`), safe mode refuses every write (`Policy.safe_mode`).

    A deny entry the site had already set for the same source is never shortened, and the lift of an
    indicator restores it rather than deleting it. ``shared_network``: the sectors share one address
    space (one host, as the intrusion scenario runs), so local addresses are enforced everywhere too."""
    own = sector or name
    before: dict[Source, datetime | None] = {}  # what each source's entry was before this enforcer set it

    def apply(indicator: Indicator) -> None:
        source = source_of(indicator)
        if source is None or (not shared_network and local_elsewhere(indicator, own)):
            return
        prior = before.get(source) if source in before else policy.deny_entries().get(source)
        before.setdefault(source, prior)
        policy.deny(source, until=max(indicator.expires, prior) if prior is not None else indicator.expires)

    def lift(indicator: Indicator) -> None:
        source = source_of(indicator)
        if source is None or source not in before:
            return
        prior = before.pop(source)
        if prior is not None and prior > datetime.now(UTC):
            policy.deny(source, until=prior)
        else:
            policy.lift(source)

    safe_modes: set[str] = set()  # the sector's safe modes in force: the last one lifted ends it

    def countermeasure(record: CountermeasureRecord, in_force: bool) -> None:
        kind, device = record.body.get("type"), record.body.get("device")
        if kind == "quarantine-device" and isinstance(device, str):
            if in_force:
                policy.quarantine(device)
            else:
                policy.release(device)
        elif kind == "safe-mode":
            if in_force:
                safe_modes.add(record.id)
            else:
                safe_modes.discard(record.id)
            policy.safe_mode(bool(safe_modes))

    return Enforcer(name, apply=apply, lift=lift, sector=sector, countermeasure=countermeasure if sector else None)
