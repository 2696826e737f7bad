"""Shared fixtures for the keys tests: ready identities and a small valid batch."""

from __future__ import annotations

import pytest

from keys import EventToSign, HybridIdentity, to_bytes32


@pytest.fixture(scope="session")
def identity() -> HybridIdentity:
    return HybridIdentity.generate()


@pytest.fixture(scope="session")
def other_identity() -> HybridIdentity:
    return HybridIdentity.generate()


@pytest.fixture()
def events() -> list[EventToSign]:
    return [
        EventToSign(seq=5, kind=0, node=to_bytes32("substation-7"), payload=b"\x01" * 32),
        EventToSign(seq=6, kind=3, node=bytes(32), payload=b""),
        EventToSign(seq=9, kind=15, node=to_bytes32("pump-3"), payload=b'{"reason":"pressure"}'),
    ]
