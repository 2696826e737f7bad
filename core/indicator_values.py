"""An indicator of compromise's kind and value, normalised, and its id: the part every layer shares.

The ledger's readers (`chain.indicators`) recount publications and the gateways and commands
(`intel`) build and enforce them; both must agree on what "the same indicator" is, so the rules live
here once (the kinds are documented in `intel.indicator`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

__all__ = ["KINDS", "indicator_id", "normalise_value"]

KINDS: tuple[str, ...] = ("source-address", "client-id", "key-fingerprint", "command-signature", "spoofing-pattern")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CLIENT = re.compile(r"^[\x21-\x7e]{1,128}$")
_PATTERN = re.compile(r"^[A-Za-z0-9_.:/-]{1,96}\|[a-z][a-z-]{1,31}$")


def indicator_id(kind: str, value: str) -> str:
    return hashlib.sha256(f"qeaims-indicator-v1\x00{kind}\x00{value}".encode()).hexdigest()


def normalise_value(kind: str, value: str) -> str:
    """``value`` as every reader writes it (an address canonical, hex lower-case); ValueError if it is not
    a value of ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown indicator kind {kind!r}: choose one of {', '.join(KINDS)}")
    if kind == "source-address":
        try:
            parsed = ipaddress.ip_address(value.strip())
        except ValueError:
            raise ValueError(f"a source-address indicator is an IPv4 or IPv6 address, not {value!r}") from None
        mapped = getattr(parsed, "ipv4_mapped", None)  # ::ffff:10.0.0.7 is 10.0.0.7
        return str(mapped if mapped is not None else parsed)
    if kind in ("key-fingerprint", "command-signature"):
        value = value.strip().lower().removeprefix("0x")
        if not _HEX64.fullmatch(value):
            raise ValueError(f"a {kind} indicator is 64 hex digits (SHA-256), not {value!r}")
        return value
    if kind == "client-id":  # exactly as the client presented it (a deny entry matches it exactly): never stripped
        if not _CLIENT.fullmatch(value):
            raise ValueError(f"a client-id indicator is 1-128 printable characters without spaces, not {value!r}")
        return value
    value = value.strip()
    if not _PATTERN.fullmatch(value):
        raise ValueError(f"a spoofing-pattern indicator is SENSOR|ATTACK (e.g. pump-1/flow|bias), not {value!r}")
    return value
