"""The vault's envelope encryption: what decrypts, and every way an attacker might make it lie."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey

from vaults.envelope import (
    VaultCryptoError,
    commitment,
    content_matches,
    new_key,
    open_record,
    seal_record,
    unwrap_for_reader,
    unwrap_record_key,
    wrap_for_reader,
    wrap_record_key,
)

VAULT = "healthcare"
TEXT = b'{"patient": "P-1042", "ward": 3, "admitted": "2026-12-06T05:40:00Z"}'


def test_a_record_round_trips_through_all_three_keys() -> None:
    reader = MLKEM768PrivateKey.generate()
    sector_key, record_key = new_key(), new_key()
    sealed = seal_record(VAULT, "adm-1", 1, TEXT, record_key)
    wrapped_rk = wrap_record_key(VAULT, "adm-1", record_key, sector_key, epoch=1, version=1)
    wrapped_sk = wrap_for_reader(VAULT, "auditor-1", "auditor", 1, sector_key, reader.public_key())
    sk = unwrap_for_reader(VAULT, "auditor-1", "auditor", 1, wrapped_sk, reader)
    assert open_record(sealed, unwrap_record_key(VAULT, "adm-1", wrapped_rk, sk, 1, version=1)) == TEXT
    assert TEXT not in sealed.ciphertext and len(wrapped_sk.kem_ciphertext) == 1088


def test_a_flipped_bit_anywhere_in_a_record_is_refused() -> None:
    key = new_key()
    sealed = seal_record(VAULT, "adm-1", 1, TEXT, key)
    for field in ("ciphertext", "nonce"):
        raw = bytearray(getattr(sealed, field))
        raw[len(raw) // 2] ^= 0x01
        with pytest.raises(VaultCryptoError):
            open_record(dataclasses.replace(sealed, **{field: bytes(raw)}), key)  # type: ignore[arg-type]


@pytest.mark.parametrize("change", [{"record_id": "adm-2"}, {"version": 2}, {"vault": "banking"}])
def test_a_ciphertext_moved_to_another_record_version_or_vault_is_refused(change: dict[str, object]) -> None:
    """An insider with write access to the files swaps one patient's record for another's: the AAD binds
    each ciphertext to where it was written."""
    key = new_key()
    sealed = seal_record(VAULT, "adm-1", 1, TEXT, key)
    with pytest.raises(VaultCryptoError):
        open_record(dataclasses.replace(sealed, **change), key)  # type: ignore[arg-type]


def test_a_wrapped_record_key_opens_only_for_its_record_version_and_sector_key_epoch() -> None:
    sector_key, record_key = new_key(), new_key()
    wrapped = wrap_record_key(VAULT, "adm-1", record_key, sector_key, epoch=3, version=2)
    with pytest.raises(VaultCryptoError):
        unwrap_record_key(VAULT, "adm-2", wrapped, sector_key, 3, version=2)  # moved to another record
    with pytest.raises(VaultCryptoError):
        unwrap_record_key(VAULT, "adm-1", wrapped, sector_key, 3, version=1)  # to another version of it
    with pytest.raises(VaultCryptoError):
        unwrap_record_key(VAULT, "adm-1", wrapped, sector_key, 2, version=2)  # an old epoch's wrap replayed
    with pytest.raises(VaultCryptoError):
        unwrap_record_key(VAULT, "adm-1", wrapped, new_key(), 3, version=2)  # another sector key
    assert unwrap_record_key(VAULT, "adm-1", wrapped, sector_key, 3, version=2) == record_key


def test_a_sector_key_wrap_opens_only_for_its_reader_and_key() -> None:
    """Another reader's private key, or the right key under another reader's name (a wrap copied into
    someone else's slot), or the right key with its role edited, does not recover the sector key."""
    alice, mallory = MLKEM768PrivateKey.generate(), MLKEM768PrivateKey.generate()
    sector_key = new_key()
    wrapped = wrap_for_reader(VAULT, "alice", "billing", 1, sector_key, alice.public_key())
    with pytest.raises(VaultCryptoError):
        unwrap_for_reader(VAULT, "alice", "billing", 1, wrapped, mallory)
    with pytest.raises(VaultCryptoError):
        unwrap_for_reader(VAULT, "mallory", "billing", 1, wrapped, alice)
    with pytest.raises(VaultCryptoError):  # the role edited on disk: "billing" made "doctor"
        unwrap_for_reader(VAULT, "alice", "doctor", 1, wrapped, alice)
    with pytest.raises(VaultCryptoError):
        unwrap_for_reader(VAULT, "alice", "billing", 1,
                          dataclasses.replace(wrapped, kem_ciphertext=wrapped.kem_ciphertext[:-1]), alice)
    raw = bytearray(wrapped.kem_ciphertext)
    raw[0] ^= 0x80  # ML-KEM's implicit rejection gives another secret; GCM refuses it
    with pytest.raises(VaultCryptoError):
        unwrap_for_reader(VAULT, "alice", "billing", 1, dataclasses.replace(wrapped, kem_ciphertext=bytes(raw)), alice)
    assert unwrap_for_reader(VAULT, "alice", "billing", 1, wrapped, alice) == sector_key


def test_the_commitment_binds_ciphertext_and_content_without_revealing_a_guessable_plaintext() -> None:
    key = new_key()
    sealed = seal_record(VAULT, "adm-1", 1, TEXT, key)
    again = seal_record(VAULT, "adm-1", 1, TEXT, key)
    assert commitment(sealed) != commitment(again)  # salted: equal records do not show as equal
    assert content_matches(sealed, TEXT) and not content_matches(sealed, TEXT + b" ")
    assert commitment(dataclasses.replace(sealed, ciphertext=again.ciphertext)) != commitment(sealed)
    assert commitment(dataclasses.replace(sealed, content_hash=again.content_hash)) != commitment(sealed)
    assert len(commitment(sealed)) == 32
    with pytest.raises(VaultCryptoError, match="no salt"):  # a shredded record: nothing to test a guess on
        content_matches(dataclasses.replace(sealed, salt=b""), TEXT)


def test_keys_of_the_wrong_size_are_refused_with_a_plain_message() -> None:
    with pytest.raises(VaultCryptoError, match="32 bytes"):
        seal_record(VAULT, "adm-1", 1, TEXT, b"short")
