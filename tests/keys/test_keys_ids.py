"""bytes32 names and event ids, as the contracts build them."""

from __future__ import annotations

import pytest

from keys import InvalidInput, InvalidName, event_id, from_bytes32, split_event_id, to_bytes32


def test_names_are_left_aligned_ascii() -> None:
    assert to_bytes32("water") == b"water" + bytes(27)
    assert from_bytes32(to_bytes32("water")) == "water"
    assert from_bytes32(to_bytes32("x" * 32)) == "x" * 32


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "must not be empty"),
        ("x" * 33, "is 33 characters; the limit is 32"),
        ("wässer", "printable ASCII"),
        ("a\x00b", "printable ASCII"),
    ],
)
def test_bad_names_are_refused(name: str, words: str) -> None:
    with pytest.raises(InvalidName, match=words) as info:
        to_bytes32(name)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (bytes(31), "exactly 32 bytes"),
        (bytes(32), "all zeros"),
        (b"\xff" + bytes(31), "not an ASCII name"),
        (b"a\x00b" + bytes(29), "non-printable"),
    ],
)
def test_bad_bytes32_names_are_refused(value: bytes, words: str) -> None:
    with pytest.raises(InvalidName, match=words):
        from_bytes32(value)


def test_event_id_packs_oracle_and_seq() -> None:
    oracle = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    packed = event_id(oracle, 7)
    assert packed == bytes(4) + bytes.fromhex(oracle[2:]) + (7).to_bytes(8, "big")
    assert int.from_bytes(packed, "big") == (int(oracle, 16) << 64) | 7
    assert split_event_id(packed) == (oracle, 7)
    assert split_event_id(event_id(oracle.lower(), 2**64 - 1)) == (oracle, 2**64 - 1)


def test_bad_event_ids_are_refused() -> None:
    with pytest.raises(InvalidInput, match="sequence number must be between 0 and"):
        event_id("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", 2**64)
    with pytest.raises(InvalidInput, match="top 32 bits are not zero"):
        split_event_id(b"\x01" + bytes(31))
    with pytest.raises(InvalidInput, match="exactly 32 bytes"):
        split_event_id(bytes(20))
