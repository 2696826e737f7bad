"""Adversarial review of what an indicator becomes at the wire: the oracles' indicators (`oracles.wire`),
the feed (`intel.feed`) and the gateway enforcer (`intel.enforce`).

Each test is a finding (review of e546dd8), passing since its fix."""

from __future__ import annotations

import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chain.indicators import active_indicators
from core.indicator_values import indicator_id, normalise_value
from gateway import Monitor, Observation, Policy, Profile, Source
from gateway.mqtt_frames import CONNECT, PUBLISH, parse_packet
from gateway.observation import frame_hash
from intel.enforce import gateway_enforcer, source_of
from intel.feed import IndicatorFeed
from intel.indicator import Indicator
from oracles.wire import indicators_of
from tests.chain.test_indicators import _publish, _verdicts

T0 = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def _packet(kind: int, body: bytes) -> bytes:
    length, n = b"", len(body)
    while True:  # MQTT's Remaining Length: 7 bits a byte, the high bit saying more follow
        n, digit = divmod(n, 128)
        length += bytes([digit | (0x80 if n else 0)])
        if not n:
            return bytes([kind << 4]) + length + body


def _connect(client_id: str, username: str, password: str = "pw") -> bytes:
    return _packet(CONNECT, b"\x00\x04MQTT\x04\xc2\x00\x3c" + _string(client_id) + _string(username)
                   + _string(password))


def _publish_packet(topic: str, payload: bytes) -> bytes:
    return _packet(PUBLISH, _string(topic) + payload)


def _mqtt(raw: bytes, source: Source, *, conn: int, at: float) -> Observation:
    return Observation(kind="frame", protocol="mqtt", sector="water", device="broker-1", source=source,
                       connection=conn, wall=T0 + timedelta(seconds=at), mono=at, direction="request",
                       frame=parse_packet(raw), digest=frame_hash(raw))


def _station_profile() -> Profile:
    """pump-scada (user scada, from 10.0.0.5) connects and publishes its telemetry, as it always does."""
    legit = Source("10.0.0.5", client_id="pump-scada", username="scada")
    obs = [_mqtt(_connect("pump-scada", "scada"), legit, conn=1, at=0.0)]
    obs += [_mqtt(_publish_packet("water/pump-1/flow", b"12.5"), legit, conn=1, at=1.0 + i) for i in range(20)]
    return Profile.learn(obs, window_s=5.0)


@pytest.mark.unit
def test_an_outsider_cannot_get_a_known_client_denied_everywhere_by_claiming_its_id() -> None:
    monitor = Monitor([_station_profile()])
    intruder = Source("10.6.6.6", client_id="pump-scada", username="guess")
    monitor.observe(_mqtt(_connect("pump-scada", "guess", "wrong"), intruder, conn=7, at=30.0))
    detections = monitor.drain()
    assert detections, "the monitor should still see the stranger"
    named = [i for d in detections for i in indicators_of(d)]
    assert {"kind": "source-address", "value": "10.6.6.6"} in named
    assert not [i for i in named if i["kind"] == "client-id" and i["value"] == "pump-scada"], named


@pytest.mark.unit
@pytest.mark.parametrize("claimed", ["x" * 200, "evil-bot "], ids=["200 characters", "a trailing space"])
def test_a_published_client_id_denies_the_client_it_was_found_on(claimed: str) -> None:
    monitor = Monitor([_station_profile()])
    attacker = Source("10.6.6.7", client_id=claimed, username="guess")
    monitor.observe(_mqtt(_connect(claimed, "guess"), attacker, conn=8, at=30.0))
    named = [i for d in monitor.drain() for i in indicators_of(d)]
    # a client id is named only as presented and where a deny entry can match it exactly; this one was
    # never accepted (and could not be matched), so the oracles name its address, which its gateway denies
    assert [i for i in named if i["kind"] == "client-id"] == []
    [item] = [i for i in named if i["kind"] == "source-address"]
    indicator = Indicator(kind="source-address", value=item["value"], confidence=75, source_sector="water",
                          first_seen=T0, expires=datetime.now(UTC) + timedelta(hours=1))
    policy = Policy()
    gateway_enforcer("water", policy).apply(indicator)
    assert policy.denied(Source("10.6.6.7", client_id=claimed, username="guess")) is not None
    with pytest.raises(ValueError):
        normalise_value("client-id", claimed)  # nor could anyone publish it, to be enforced as something else


@pytest.mark.unit
def test_an_address_indicator_denies_the_address_whatever_the_socket_family() -> None:
    indicator = Indicator(kind="source-address", value=normalise_value("source-address", "::ffff:93.184.216.34"),
                          confidence=75, source_sector="water", first_seen=T0,
                          expires=datetime.now(UTC) + timedelta(hours=1))
    assert indicator.value == "93.184.216.34"  # one spelling, published and matched
    policy = Policy()
    gateway_enforcer("electricity", policy).apply(indicator)
    assert policy.denied(Source("::ffff:93.184.216.34")) is not None
    assert policy.denied(Source("93.184.216.34")) is not None


@pytest.mark.unit
def test_an_indicator_does_not_shorten_or_lift_a_sites_own_deny() -> None:
    policy = Policy()
    own = datetime.now(UTC) + timedelta(days=7)
    policy.deny(Source("10.0.0.8"), until=own)  # the site's own countermeasure
    indicator = Indicator(kind="source-address", value="10.0.0.8", confidence=75, source_sector="water",
                          first_seen=T0, expires=datetime.now(UTC) + timedelta(hours=1))
    enforcer = gateway_enforcer("electricity", policy)
    enforcer.apply(indicator)
    enforcer.lift(indicator)
    source = source_of(indicator)
    assert source is not None and policy.deny_entries().get(source) == own


@pytest.mark.chain
def test_a_republished_indicator_is_enforced_until_its_new_expiry(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain, value = fresh_chain, "10.204.0.1"  # its own chain: an indicator left in force skews test_feed's figures
    ident = indicator_id("source-address", value)
    policy = Policy()
    feed = IndicatorFeed(chain.client, chain.deployment, tmp_path / "feed.sqlite")
    feed.add(gateway_enforcer("water", policy))  # its source sector: a private address is enforced there
    try:
        cites = _verdicts(chain, "water", (1, 2, 3), "source-address", value)
        _publish(chain, cites, "source-address", value, expires=datetime.now(UTC) + timedelta(seconds=2))
        assert ident in feed.poll()
        time.sleep(2.5)  # the first publication expires; the feed has not polled since
        again = _verdicts(chain, "water", (1, 2, 3), "source-address", value)
        _publish(chain, again, "source-address", value, expires=datetime.now(UTC) + timedelta(hours=1))
        assert ident in feed.poll()
        assert ident in active_indicators(feed.index.db)  # the chain: in force for an hour
        assert policy.denied(Source(value)) is not None, "the gateway lets the published address in"
    finally:
        feed.stop()


@pytest.mark.unit
def test_one_address_spraying_client_ids_is_one_attack_not_a_thousand() -> None:
    monitor = Monitor([_station_profile()])
    for i in range(1000):
        bot = Source("10.6.6.9", client_id=f"bot-{i}", username="x")
        monitor.observe(_mqtt(_connect(f"bot-{i}", "x"), bot, conn=100 + i, at=30.0 + i * 0.01))
    detections = [d for d in monitor.drain() if d.source.address == "10.6.6.9"]
    assert len(detections) < 20, f"{len(detections)} detections (intrusion events) from one address in 10 s"


@pytest.mark.unit
@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.20", "127.0.0.1", "fe80::1"])
def test_an_address_that_is_only_local_is_not_enforced_in_another_sector(address: str) -> None:
    indicator = Indicator(kind="source-address", value=address, confidence=75, source_sector="water",
                          first_seen=T0, expires=datetime.now(UTC) + timedelta(hours=1))
    policy = Policy()
    gateway_enforcer("electricity", policy).apply(indicator)
    assert policy.denied(Source(indicator.value)) is None, "electricity's own host at that address is refused"
