"""The vault's files: what a retry, a crash, an insider with a shell and a careless name can do to them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.vaults.support import SK
from tests.vaults.support import read_record as _read
from tests.vaults.support import write_record as _write
from vaults.envelope import new_key, seal_record, wrap_record_key
from vaults.store import Shredded, VaultConflict, VaultCorrupt, VaultError, VaultStore


def test_records_round_trip_by_version_and_retries_change_nothing(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    _write(store, "adm-1", 1, b"ward 3")
    _write(store, "adm-1", 2, b"ward 5")
    assert _read(store, "adm-1") == b"ward 5" and _read(store, "adm-1", 1) == b"ward 3"
    assert list(store.records()) == [("adm-1", 1), ("adm-1", 2)]
    sealed = store.get("adm-1", 2)
    epoch, wrapped = store.record_key("adm-1", 2)
    assert store.put(sealed, wrapped, epoch) is False  # the same write again: a retry after a crash
    with pytest.raises(VaultConflict, match="new version"):
        _write(store, "adm-1", 2, b"ward 9")  # never overwritten
    assert _read(store, "adm-1") == b"ward 5"


def test_files_are_private(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "banking")
    _write(store, "tx-1", 1, b"EUR 10")
    for path in store.path.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".", "..", "x" * 65, "-lead", "sp ace"])
def test_a_name_that_could_leave_the_vault_is_refused(tmp_path: Path, name: str) -> None:
    store = VaultStore(tmp_path, "banking")
    with pytest.raises(VaultError, match="not a valid name"):
        store.get(name, 1)
    with pytest.raises(VaultError, match="not a valid name"):
        VaultStore(tmp_path, name)
    assert not (tmp_path / "escape").exists()


def test_a_record_file_swapped_for_another_is_refused(tmp_path: Path) -> None:
    """An insider copies patient B's file over patient A's: the vault notices before any key is used."""
    store = VaultStore(tmp_path, "healthcare")
    _write(store, "adm-1", 1, b"A")
    _write(store, "adm-2", 1, b"B")
    a = store.path / "records" / "adm-1" / "v1.json"
    a.write_bytes((store.path / "records" / "adm-2" / "v1.json").read_bytes())
    with pytest.raises(VaultCorrupt, match="holds adm-2"):
        store.get("adm-1", 1)


def test_a_shredded_record_stays_as_proof_and_is_never_readable_or_written_again(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    _write(store, "adm-1", 1, b"A")
    _write(store, "adm-1", 2, b"A2")
    _write(store, "adm-2", 1, b"B")
    assert store.shred("adm-1") == 2  # both versions' keys
    assert store.shredded("adm-1") and not store.shredded("adm-2")
    assert store.get("adm-1", 1).ciphertext  # the ciphertext remains: the chain's commitment still matches
    with pytest.raises(Shredded):
        store.record_key("adm-1", 1)
    with pytest.raises(Shredded):
        _write(store, "adm-1", 3, b"A3")
    assert _read(store, "adm-2") == b"B"  # nothing else touched


def _log(store: VaultStore, n: int) -> None:
    for i in range(n):
        store.log_access(reader="auditor-1", role="auditor", record_id="adm-1", version=1, reason_hash="00" * 32,
                         at=f"2026-12-06T06:0{i}:00Z", granted=True, event=f"0xabc:{i + 1}")


@pytest.mark.parametrize("tamper", ["edit", "remove", "reorder"])
def test_an_access_log_edited_on_disk_breaks_its_chain_where_it_was_touched(tmp_path: Path, tamper: str) -> None:
    store = VaultStore(tmp_path, "healthcare")
    _log(store, 3)
    path = store.path / "access.jsonl"
    lines = path.read_text().splitlines()
    if tamper == "edit":
        entry = json.loads(lines[1])
        entry["reader"] = "someone-else"
        lines[1] = json.dumps(entry, sort_keys=True)
    elif tamper == "remove":
        del lines[1]
    else:
        lines[1], lines[2] = lines[2], lines[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(VaultCorrupt, match="line 2|line 3"):
        store.access_log()


def test_a_torn_last_append_is_dropped_and_the_log_goes_on(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "healthcare")
    _log(store, 2)
    with open(store.path / "access.jsonl", "ab") as handle:
        handle.write(b'{"seq": 3, "reader": "audi')  # the crash came mid-write: never acknowledged
    assert [e.seq for e in store.access_log()] == [1, 2]
    _log(store, 1)
    assert [e.seq for e in store.access_log()] == [1, 2, 3]


def test_writes_queued_while_sealed_come_back_in_record_and_version_order(tmp_path: Path) -> None:
    store = VaultStore(tmp_path, "banking")
    store.set_sealed(True, reason="intrusion on gateway-1", at="2026-12-06T06:00:00Z")
    assert store.sealed
    for record, version in (("tx-2", 1), ("tx-1", 2), ("tx-1", 1)):
        rk = new_key()
        sealed = seal_record("banking", record, version, b"x", rk)
        assert store.queue(sealed, wrap_record_key("banking", record, rk, SK, 1, version=version), 1)
        assert not store.queue(sealed, wrap_record_key("banking", record, rk, SK, 1, version=version), 1)  # a retry
    assert [(s.record_id, s.version) for _, s, _, _ in store.pending()] == [("tx-1", 1), ("tx-1", 2), ("tx-2", 1)]
    assert list(store.records()) == []  # nothing applied while sealed


def test_readers_wraps_round_trip_and_a_mangled_file_is_named(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey

    from vaults.envelope import unwrap_for_reader, wrap_for_reader

    store = VaultStore(tmp_path, "healthcare")
    assert store.readers() == (0, {})
    alice = MLKEM768PrivateKey.generate()
    store.set_readers(2, {"alice": ("auditor", wrap_for_reader("healthcare", "alice", "auditor", 2, SK,
                                                               alice.public_key()))})
    epoch, readers = store.readers()
    role, wrapped = readers["alice"]
    assert (epoch, role) == (2, "auditor")
    assert unwrap_for_reader("healthcare", "alice", role, epoch, wrapped, alice) == SK
    (store.path / "readers.json").write_text('{"epoch": 2, "readers": []}')
    with pytest.raises(VaultCorrupt, match="readers file"):
        store.readers()
