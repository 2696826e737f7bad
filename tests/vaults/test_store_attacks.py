"""The vault's files under attack (the second adversarial review's findings B1-B13, each failing before
its fix): shredding that leaves a key behind, rollbacks, races, planted symlinks, a deleted state file."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey

import vaults
from tests.vaults.support import SK
from tests.vaults.support import read_record as _read
from tests.vaults.support import write_record as _write
from vaults.envelope import (
    VaultCryptoError,
    new_key,
    seal_record,
    unwrap_for_reader,
    wrap_for_reader,
    wrap_record_key,
)
from vaults.store import Shredded, VaultConflict, VaultCorrupt, VaultError, VaultStore


# B1 -------------------------------------------------------------------------------------------------
def test_shredding_also_destroys_a_queued_write_of_the_record(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    _write(store, "adm-1", 1, b"ward 3")
    rk = new_key()
    store.queue(seal_record("healthcare", "adm-1", 2, b"ward 5", rk),
                wrap_record_key("healthcare", "adm-1", rk, SK, 1, version=2), 1)
    store.shred("adm-1")
    assert [s.record_id for _, s, _, _ in store.pending()] == []  # no wrapped key of adm-1 left anywhere


# B2 -------------------------------------------------------------------------------------------------
def test_a_key_temporary_left_by_a_crash_does_not_survive_shredding(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    _write(store, "adm-1", 1, b"ward 3")
    code = (
        f"import os, signal, sys, pathlib; sys.path.insert(0, {str(Path(vaults.__file__).resolve().parents[1])!r})\n"
        "import keys.files as kf\nfrom vaults.store import VaultStore\nfrom vaults.envelope import new_key, wrap_record_key\n"
        f"s = VaultStore(pathlib.Path({str(tmp_path)!r}), 'healthcare')\n"
        "kf.os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # power cut before the rename\n"
        "s.rewrap('adm-1', 1, wrap_record_key('healthcare', 'adm-1', new_key(), bytes(range(32)), 2, version=1), 2)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    store.shred("adm-1")
    assert [p.name for p in (store.path / "keys" / "adm-1").iterdir()] == ["SHREDDED"]


# B4 -------------------------------------------------------------------------------------------------
def test_the_readers_epoch_never_goes_back(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    a, b = MLKEM768PrivateKey.generate(), MLKEM768PrivateKey.generate()
    sk1, sk2 = new_key(), new_key()
    store.set_readers(1, {"dr-a": ("doctor", wrap_for_reader("healthcare", "dr-a", "doctor", 1, sk1, a.public_key())),
                          "dr-b": ("doctor", wrap_for_reader("healthcare", "dr-b", "doctor", 1, sk1, b.public_key()))})
    old = (store.path / "readers.json").read_bytes()
    store.set_readers(2, {"dr-a": ("doctor", wrap_for_reader("healthcare", "dr-a", "doctor", 2, sk2, a.public_key()))})
    _write(store, "adm-1", 1, b"x", sk=sk2, epoch=2)
    with pytest.raises(VaultError):
        store.set_readers(1, {})  # an older epoch is refused
    (store.path / "readers.json").write_bytes(old)  # a backup restored after dr-b was revoked
    with pytest.raises(VaultCorrupt):
        store.readers()  # epoch 1 while record keys are wrapped under epoch 2: a rollback


# B5 (store-side part; the rest is the chain's job) ----------------------------------------------------
def test_a_read_of_the_log_never_modifies_it(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    for i in range(2):
        store.log_access(reader="dr-a", role="doctor", record_id="adm-1", version=1, reason_hash="0" * 64,
                         at="t", granted=True, event=f"o:{i}")
    path = store.path / "access.jsonl"
    path.write_bytes(path.read_bytes()[:-1])  # the last entry's newline removed
    before = path.read_bytes()
    with pytest.raises(VaultCorrupt):
        store.access_log()  # an acknowledged (fsynced) entry without its newline is not a torn append
    assert path.read_bytes() == before


# B6 -------------------------------------------------------------------------------------------------
def _append(root: str, n: int) -> None:
    store = VaultStore(Path(root), "healthcare")
    for i in range(n):
        store.log_access(reader="dr-a", role="doctor", record_id="adm-1", version=1, reason_hash="0" * 64,
                         at="t", granted=True, event=f"o:{i}")


def test_concurrent_reads_log_a_whole_chain(tmp_path: Path) -> None:
    VaultStore(tmp_path, "healthcare")
    workers = [mp.Process(target=_append, args=(str(tmp_path), 40)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(VaultStore(tmp_path, "healthcare").access_log()) == 80


# B7 -------------------------------------------------------------------------------------------------
def _race(root: str, record: str, text: bytes, barrier: object, out: object) -> None:
    store = VaultStore(Path(root), "healthcare")
    rk = new_key()
    sealed = seal_record("healthcare", record, 1, text, rk)
    wrapped = wrap_record_key("healthcare", record, rk, SK, 1, version=1)
    barrier.wait()  # type: ignore[attr-defined]
    try:
        out.put((record, store.put(sealed, wrapped, 1)))  # type: ignore[attr-defined]
    except VaultConflict:
        out.put((record, False))  # type: ignore[attr-defined]


def test_an_acknowledged_write_is_readable_even_when_another_writer_raced_it(tmp_path: Path) -> None:
    VaultStore(tmp_path, "healthcare")
    out: mp.Queue[tuple[str, bool]] = mp.Queue()
    for i in range(10):
        barrier = mp.Barrier(2)
        workers = [mp.Process(target=_race, args=(str(tmp_path), f"r{i}", t, barrier, out)) for t in (b"A", b"B")]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    store = VaultStore(tmp_path, "healthcare")
    for record, acknowledged in (out.get() for _ in range(20)):
        if acknowledged:
            _read(store, record, 1)  # never VaultCryptoError


# B8 -------------------------------------------------------------------------------------------------
def test_shredding_never_writes_through_a_symlink(tmp_path: Path) -> None:
    store = VaultStore(tmp_path / "v", "healthcare")
    _write(store, "adm-1", 1, b"ward 3")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not the vault's")
    key = store.path / "keys" / "adm-1" / "v1.json"
    key.unlink()
    key.symlink_to(outside)
    with pytest.raises(VaultCorrupt):
        store.shred("adm-1")
    assert outside.read_bytes() == b"not the vault's"


def test_reading_the_log_never_truncates_a_file_outside_the_vault(tmp_path: Path) -> None:
    store = VaultStore(tmp_path / "v", "healthcare")
    outside = tmp_path / "notes.txt"
    outside.write_bytes(b"one\ntwo")
    (store.path / "access.jsonl").symlink_to(outside)
    with pytest.raises(VaultCorrupt):
        store.access_log()
    assert outside.read_bytes() == b"one\ntwo"


# B9 -------------------------------------------------------------------------------------------------
def test_a_sealed_vault_whose_state_file_is_deleted_stays_sealed(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    store.set_sealed(True, reason="intrusion", at="2026-12-06T00:00:00Z")
    (store.path / "state.json").unlink()
    assert store.sealed  # or VaultCorrupt: never silently unsealed (unsealing is read from the chain)


# B10 ------------------------------------------------------------------------------------------------
def test_a_queued_write_whose_body_disagrees_with_its_name_or_vault_is_refused(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    rk = new_key()
    store.queue(seal_record("healthcare", "adm-1", 1, b"x", rk),
                wrap_record_key("healthcare", "adm-1", rk, SK, 1, version=1), 1)
    queued = store.path / "pending" / "adm-1.v1.json"
    queued.rename(queued.with_name("adm-9.v7.json"))
    with pytest.raises(VaultCorrupt):
        store.pending()


# B11 ------------------------------------------------------------------------------------------------
def test_a_stray_file_in_records_does_not_stop_the_enumeration(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    _write(store, "adm-1", 1, b"x")
    (store.path / "records" / ".DS_Store").write_bytes(b"")
    assert list(store.records()) == [("adm-1", 1)]


# B13 ------------------------------------------------------------------------------------------------
def test_a_readers_role_edited_on_disk_does_not_unwrap(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    key = MLKEM768PrivateKey.generate()
    sk = new_key()
    store.set_readers(1, {"clerk": ("billing", wrap_for_reader("healthcare", "clerk", "billing", 1, sk, key.public_key()))})
    path = store.path / "readers.json"
    body = json.loads(path.read_text())
    body["readers"]["clerk"]["role"] = "doctor"
    path.write_text(json.dumps(body))
    epoch, readers = store.readers()
    role, wrapped = readers["clerk"]
    with pytest.raises(VaultCryptoError):
        unwrap_for_reader("healthcare", "clerk", role, epoch, wrapped, key)


# B14 ------------------------------------------------------------------------------------------------
def test_a_shredded_record_leaves_nothing_to_check_a_guess_against(tmp_path: Path) -> None:
    from vaults.envelope import commitment, content_matches

    store = VaultStore(tmp_path, "healthcare")
    rk = new_key()
    sealed = seal_record("healthcare", "adm-1", 1, b"admitted: ward 7", rk)
    on_chain = commitment(sealed)
    store.put(sealed, wrap_record_key("healthcare", "adm-1", rk, SK, 1, version=1), 1)
    assert store.get("adm-1", 1).salt == sealed.salt
    store.shred("adm-1")
    left = store.get("adm-1", 1)  # the ciphertext stays as proof, still matching the chain; its salt does not
    assert commitment(left) == on_chain and left.salt == b""
    assert sealed.salt.hex() not in "".join(p.read_text() for p in store.path.rglob("*.json"))
    with pytest.raises(VaultCryptoError):
        content_matches(left, b"admitted: ward 7")


# B3 (store-side part; the full answer is the chain's shredding event) ---------------------------------
def test_a_key_file_restored_from_a_backup_does_not_unshred(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    _write(store, "adm-1", 1, b"ward 3")
    backup = (store.path / "keys" / "adm-1" / "v1.json").read_bytes()
    store.shred("adm-1")
    (store.path / "keys" / "adm-1" / "v1.json").write_bytes(backup)
    assert store.shredded("adm-1")
    with pytest.raises(Shredded):
        store.record_key("adm-1", 1)
