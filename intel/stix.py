"""Indicators as a STIX 2.1 bundle (the `stix2` library), for a utility's own SOC or a MISP/TAXII feed.

Each indicator becomes an ``indicator`` SDO whose STIX pattern matches what a SOC's tools can see:
an address as ``ipv4-addr``/``ipv6-addr``, a command signature as an ``artifact``'s SHA-256, and for
what STIX has no object for (a device-protocol client identity, an ML-DSA key's fingerprint, a
sensor spoofing pattern) a custom ``x-qeaims-*`` object, which STIX 2.1 allows in patterns. The
publishing sector is the ``identity`` that created it; confidence, ``valid_from``/``valid_until``
and, for a withdrawn indicator, ``revoked`` carry over. Ids are UUIDv5 of the indicator's id, so a
re-export of the same indicator is the same object (a feed consumer updates, never duplicates).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stix2

from intel.indicator import Indicator

__all__ = ["ExportItem", "stix_bundle", "stix_pattern"]

_NAMESPACE = uuid.UUID("6f1b2c6e-3e0a-5b7e-9d5a-51a1e5c0a1f8")


@dataclass(frozen=True)
class ExportItem:
    indicator: Indicator
    published_at: datetime  # the publication's block time
    withdrawn: bool = False
    evidence: tuple[str, ...] = ()  # the on-chain events it rests on ("oracle:seq")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def stix_pattern(indicator: Indicator) -> str:
    value = _quote(indicator.value)
    if indicator.kind == "source-address":
        family = "ipv4-addr" if ipaddress.ip_address(indicator.value).version == 4 else "ipv6-addr"
        return f"[{family}:value = '{value}']"
    if indicator.kind == "command-signature":
        return f"[artifact:hashes.'SHA-256' = '{value}']"
    if indicator.kind == "client-id":
        return f"[x-qeaims-client:client_id = '{value}']"
    if indicator.kind == "key-fingerprint":
        return f"[x-qeaims-key:sha256 = '{value}']"
    sensor, attack = indicator.value.split("|", 1)
    return f"[x-qeaims-spoof:sensor = '{_quote(sensor)}' AND x-qeaims-spoof:attack = '{_quote(attack)}']"


def _identity(sector: str) -> stix2.Identity:
    return stix2.Identity(id=f"identity--{uuid.uuid5(_NAMESPACE, 'sector:' + sector)}",
                          name=f"QEAIMS {sector} sector quorum", identity_class="organization",
                          created="2026-01-01T00:00:00Z", modified="2026-01-01T00:00:00Z")


def stix_bundle(items: Iterable[ExportItem]) -> dict[str, Any]:
    """A STIX 2.1 bundle of the indicators and their publishing sectors, as a JSON-ready dict."""
    objects: list[Any] = []
    identities: dict[str, stix2.Identity] = {}
    for item in items:
        ind = item.indicator
        creator = identities.setdefault(ind.source_sector, _identity(ind.source_sector))
        fields: dict[str, Any] = {
            "id": f"indicator--{uuid.uuid5(_NAMESPACE, ind.id)}",
            "created": ind.first_seen, "modified": max(item.published_at, ind.first_seen),
            "name": f"{ind.kind} {ind.value}", "description": ind.description or None,
            "pattern": stix_pattern(ind), "pattern_type": "stix", "valid_from": ind.first_seen,
            "valid_until": ind.expires, "confidence": ind.confidence, "created_by_ref": creator.id,
            "indicator_types": ["malicious-activity"], "revoked": item.withdrawn,
            "labels": [f"qeaims:{ind.kind}"],
            "external_references": [{"source_name": "qeaims-ledger", "external_id": e} for e in item.evidence] or None,
        }
        objects.append(stix2.Indicator(**{k: v for k, v in fields.items() if v is not None}, allow_custom=True))
    content = "|".join(f"{o.id}@{o.modified}" for o in objects)
    bundle = stix2.Bundle(id=f"bundle--{uuid.uuid5(_NAMESPACE, content)}", objects=[*identities.values(), *objects],
                          allow_custom=True)
    import json

    return dict(json.loads(bundle.serialize()))
