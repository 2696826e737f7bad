"""Keystore files: round trip, errors an operator can act on, tamper evidence, safe writes, rotation."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from keys import (
    DEFAULT_SCRYPT_N,
    HybridIdentity,
    InvalidInput,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreExists,
    KeystoreNotFound,
    WrongPassphrase,
    archive_path,
    load_keystore,
    read_keystore_header,
    rotate_keystore,
    save_keystore,
)

FAST_N = 2**4
PASSPHRASE = "correct horse battery staple"


def _save(identity: HybridIdentity, path: Path, **kwargs: Any) -> None:
    save_keystore(
        identity, path, PASSPHRASE, label=kwargs.pop("label", "water-oracle-1"), scrypt_n=FAST_N, **kwargs
    )


def _edit(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_round_trip(identity: HybridIdentity, tmp_path: Path) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    loaded = load_keystore(path, PASSPHRASE)
    assert loaded == identity
    assert loaded.secp256k1_private_key == identity.secp256k1_private_key
    assert loaded.mldsa_seed == identity.mldsa_seed


def test_file_layout_and_header(identity: HybridIdentity, tmp_path: Path) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    document = json.loads(path.read_text())
    assert document["version"] == 1
    assert document["address"] == identity.address
    assert document["pq_key_hash"] == "0x" + identity.pq_key_hash.hex()
    assert document["kdf"] == {"name": "scrypt", "n": FAST_N, "r": 8, "p": 1, "salt": document["kdf"]["salt"]}
    assert document["cipher"]["name"] == "aes-256-gcm"
    assert len(bytes.fromhex(document["ciphertext"])) == 64 + 16  # two 32-byte secrets + GCM tag
    assert identity.mldsa_seed.hex() not in path.read_text()
    header = read_keystore_header(path)
    assert (header.address, header.label, header.key_epoch) == (identity.address, "water-oracle-1", 1)
    assert header.pq_key_hash == identity.pq_key_hash


def test_default_cost_is_scrypt_2_15(identity: HybridIdentity, tmp_path: Path) -> None:
    path = tmp_path / "oracle.json"
    header = save_keystore(identity, path, PASSPHRASE, label="prod")
    assert header.scrypt_n == DEFAULT_SCRYPT_N == 2**15
    assert load_keystore(path, PASSPHRASE) == identity


def test_wrong_passphrase(identity: HybridIdentity, tmp_path: Path) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    with pytest.raises(WrongPassphrase) as info:
        load_keystore(path, "Correct horse battery staple")
    assert str(info.value) == f"wrong passphrase for keystore {path}"
    assert info.value.path == path


def test_missing_keystore(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(KeystoreNotFound, match="no keystore at .*nope.json; check the path"):
        load_keystore(path, PASSPHRASE)
    with pytest.raises(KeystoreNotFound):
        read_keystore_header(path)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.__setitem__("key_epoch", 2), "altered after it was written"),
        (lambda d: d.__setitem__("label", "sewage-oracle-1"), "altered after it was written"),
        (lambda d: d.__setitem__("address", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"), "altered"),
        (lambda d: d.__setitem__("pq_key_hash", "0x" + "00" * 32), "altered after it was written"),
        (lambda d: d.__setitem__("ciphertext", "00" + d["ciphertext"][2:]), "altered after it was written"),
        (lambda d: d["cipher"].__setitem__("nonce", "00" * 12), "altered after it was written"),
    ],
)
def test_tampering_is_detected(identity: HybridIdentity, tmp_path: Path, change: Any, words: str) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    _edit(path, change)
    with pytest.raises(KeystoreCorrupt, match=words):
        load_keystore(path, PASSPHRASE)


def test_changed_kdf_reads_as_wrong_passphrase(identity: HybridIdentity, tmp_path: Path) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    _edit(path, lambda d: d["kdf"].__setitem__("n", FAST_N * 2))
    with pytest.raises(WrongPassphrase):
        load_keystore(path, PASSPHRASE)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        ('{"version": 2}', "version 2 is not supported"),
        ('{"version": 1}', "missing or unexpected fields"),
    ],
)
def test_malformed_files_are_corrupt(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "oracle.json"
    path.write_text(content)
    with pytest.raises(KeystoreCorrupt, match=words) as info:
        load_keystore(path, PASSPHRASE)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d["kdf"].__setitem__("n", 2**30), "outside the accepted range"),
        (lambda d: d["kdf"].__setitem__("n", "16"), "scrypt n is not an integer"),
        (lambda d: d["kdf"].__setitem__("name", "pbkdf2"), "kdf must be scrypt"),
        (lambda d: d["cipher"].__setitem__("name", "aes-128-cbc"), "cipher must be aes-256-gcm"),
        (lambda d: d.__setitem__("salt", "zz"), "missing or unexpected fields: salt"),
        (lambda d: d.__setitem__("ciphertext", "zz"), "ciphertext is not a hex string"),
        (lambda d: d.__setitem__("ciphertext", "00"), "ciphertext should be 80 bytes, found 1"),
        (lambda d: d.__setitem__("address", "0x12"), "address is not a valid account address"),
        (lambda d: d.__setitem__("key_epoch", 0), "key_epoch 0 is outside"),
        (lambda d: d.__setitem__("pq_key_hash", "00" * 32), "pq_key_hash is not a hex string"),
    ],
)
def test_bad_fields_are_corrupt(identity: HybridIdentity, tmp_path: Path, change: Any, words: str) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    _edit(path, change)
    with pytest.raises(KeystoreCorrupt, match=words):
        read_keystore_header(path)


def test_directory_is_not_a_keystore(tmp_path: Path) -> None:
    with pytest.raises(KeystoreCorrupt, match="is a directory"):
        load_keystore(tmp_path, PASSPHRASE)


def test_modes_are_private(identity: HybridIdentity, tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "oracle.json"
    old_umask = os.umask(0o022)
    try:
        _save(identity, path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700


def test_write_leaves_no_temporary_files(identity: HybridIdentity, tmp_path: Path) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    _save(identity, path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oracle.json"]


def test_failed_write_keeps_old_file_and_no_temporary(
    identity: HybridIdentity, other_identity: HybridIdentity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    before = path.read_bytes()

    def failing_replace(src: str, dst: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(KeystoreError, match="cannot write keystore .*: No space left on device"):
        _save(other_identity, path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oracle.json"]


def test_existing_keystore_is_not_overwritten(
    identity: HybridIdentity, other_identity: HybridIdentity, tmp_path: Path
) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    with pytest.raises(KeystoreExists, match="already exists; choose another path or rotate"):
        _save(other_identity, path)
    assert load_keystore(path, PASSPHRASE) == identity
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oracle.json"]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"scrypt_n": 1000}, "power of two"),
        ({"scrypt_n": 2**2}, "power of two from 16"),
        ({"label": "two\nlines"}, "label must be printable"),
    ],
)
def test_bad_save_arguments(
    identity: HybridIdentity, tmp_path: Path, kwargs: dict[str, Any], words: str
) -> None:
    args: dict[str, Any] = {"label": "x", "scrypt_n": FAST_N}
    args.update(kwargs)
    with pytest.raises(InvalidInput, match=words):
        save_keystore(identity, tmp_path / "k.json", PASSPHRASE, **args)


def test_empty_passphrase_is_refused(identity: HybridIdentity, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="passphrase must not be empty"):
        save_keystore(identity, tmp_path / "k.json", "", label="x", scrypt_n=FAST_N)


def test_rotation_archives_the_old_key(identity: HybridIdentity, tmp_path: Path) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    old_bytes = path.read_bytes()
    new_key = MLDSA65PrivateKey.generate()
    rotated = rotate_keystore(path, PASSPHRASE, new_key)
    assert rotated.key_epoch == 2 and rotated.address == identity.address
    assert load_keystore(path, PASSPHRASE) == rotated
    archive = archive_path(path, 1)
    assert archive.name == "oracle.epoch1.json"
    assert archive.read_bytes() == old_bytes
    assert load_keystore(archive, PASSPHRASE) == identity
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    header = read_keystore_header(path)
    assert (header.label, header.key_epoch, header.scrypt_n) == ("water-oracle-1", 2, FAST_N)
    rotated_again = rotate_keystore(path, PASSPHRASE, MLDSA65PrivateKey.generate())
    assert rotated_again.key_epoch == 3
    assert load_keystore(archive_path(path, 2), PASSPHRASE) == rotated
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["oracle.epoch1.json", "oracle.epoch2.json", "oracle.json"]


def test_rotation_resumes_after_crash(identity: HybridIdentity, tmp_path: Path) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    archive_path(path, 1).write_bytes(path.read_bytes())  # crash after archiving, before the new key
    rotated = rotate_keystore(path, PASSPHRASE, MLDSA65PrivateKey.generate())
    assert load_keystore(path, PASSPHRASE) == rotated


def test_rotation_refuses_to_clobber_a_different_archive(
    identity: HybridIdentity, other_identity: HybridIdentity, tmp_path: Path
) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    _save(other_identity, archive_path(path, 1))
    with pytest.raises(KeystoreExists, match="oracle.epoch1.json already exists"):
        rotate_keystore(path, PASSPHRASE, MLDSA65PrivateKey.generate())
    assert load_keystore(path, PASSPHRASE) == identity


def test_rotation_needs_the_passphrase(identity: HybridIdentity, tmp_path: Path) -> None:
    path = tmp_path / "oracle.json"
    _save(identity, path)
    with pytest.raises(WrongPassphrase):
        rotate_keystore(path, "wrong", MLDSA65PrivateKey.generate())
    assert not archive_path(path, 1).exists()
