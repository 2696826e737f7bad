"""Indicators as users and other sectors hand them over: normalised, identified, refused in one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import stix2

from core.errors import ConfigError
from intel.indicator import KINDS, parse_indicator
from intel.stix import ExportItem, stix_bundle

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _data(kind: str, value: str, **extra: object) -> dict[str, object]:
    return {"kind": kind, "value": value, "confidence": 80, "source_sector": "water", "first_seen": NOW,
            "expires": NOW + timedelta(hours=1), **extra}


def test_the_same_indicator_written_two_ways_is_one_indicator() -> None:
    a = parse_indicator(_data("source-address", " 10.0.0.7 "), now=NOW)
    b = parse_indicator(_data("source-address", "10.0.0.7", confidence=40, source_sector="banking"), now=NOW)
    assert a.value == "10.0.0.7" and a.id == b.id
    c = parse_indicator(_data("command-signature", "0x" + "AB" * 32), now=NOW)
    assert c.value == "ab" * 32 and c.id == parse_indicator(_data("command-signature", "ab" * 32), now=NOW).id
    assert parse_indicator(_data("source-address", "::ffff:10.0.0.7"), now=NOW).value == "10.0.0.7"  # IPv4-mapped
    assert parse_indicator(_data("source-address", "2001:DB8::1"), now=NOW).value == "2001:db8::1"


@pytest.mark.parametrize(("data", "message"), [
    ({"kind": "ip-range", "value": "10.0.0.0/8"}, "unknown indicator kind 'ip-range': choose one of source-address"),
    (_data("source-address", "10.0.0.300"), "IPv4 or IPv6 address, not '10.0.0.300'"),
    (_data("key-fingerprint", "abc"), "64 hex digits"),
    (_data("client-id", "has space"), "printable characters without spaces"),
    (_data("spoofing-pattern", "pump-1/flow"), "SENSOR|ATTACK"),
    (_data("client-id", "x", confidence=101), "less than or equal to 100"),
    (_data("client-id", "x", expires=NOW - timedelta(hours=1)), "expire after it was first seen"),
    (_data("client-id", "x", first_seen=NOW - timedelta(days=2), expires=NOW - timedelta(days=1)),
     "expired at 2026-12-05T09:00:00\\+00:00: an expired indicator is enforced nowhere"),
])
def test_bad_indicators_get_one_plain_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_indicator(data, now=NOW)


def test_the_stix_export_is_valid_stix_2_1_and_stable() -> None:
    values = {"source-address": "10.0.0.7", "client-id": "eng-ws-3", "key-fingerprint": "cd" * 32,
              "command-signature": "ef" * 32, "spoofing-pattern": "pump-1/flow|bias"}
    items = [ExportItem(parse_indicator(_data(k, values[k]), now=NOW), NOW + timedelta(seconds=3),
                        withdrawn=(k == "client-id"), evidence=("0xabc:7", "0xdef:9")) for k in KINDS]
    bundle = stix_bundle(items)
    assert bundle == stix_bundle(items)  # the same indicators export to the same objects
    parsed = stix2.parse(bundle, allow_custom=True)
    indicators = [o for o in parsed.objects if o.type == "indicator"]
    assert [o.pattern for o in indicators] == [
        "[ipv4-addr:value = '10.0.0.7']", "[x-qeaims-client:client_id = 'eng-ws-3']",
        f"[x-qeaims-key:sha256 = '{'cd' * 32}']", f"[artifact:hashes.'SHA-256' = '{'ef' * 32}']",
        "[x-qeaims-spoof:sensor = 'pump-1/flow' AND x-qeaims-spoof:attack = 'bias']"]
    assert [o.revoked for o in indicators] == [False, True, False, False, False]
    assert all(o.confidence == 80 and o.created_by_ref.startswith("identity--") for o in indicators)
    assert {r.external_id for r in indicators[0].external_references} == {"0xabc:7", "0xdef:9"}
    [identity] = [o for o in parsed.objects if o.type == "identity"]
    assert identity.name == "QEAIMS water sector quorum"
