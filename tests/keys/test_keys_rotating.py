"""The rotation lock excludes other threads and other processes; the pending-rotation record round-trips."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from keys.errors import KeystoreBusy, KeystoreCorrupt, KeystoreError
from keys.rotating import (
    PendingRotation,
    clear_pending_rotation,
    pending_rotation_path,
    read_pending_rotation,
    record_pending_rotation,
    rotation_lock,
    rotation_lock_path,
)

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "0x" + "ab" * 20


def test_a_second_thread_waits_for_the_lock_and_gets_it_once_released(tmp_path: Path) -> None:
    keystore = tmp_path / "water-2.json"
    entered = threading.Event()
    with rotation_lock(keystore, timeout_s=1.0):
        with pytest.raises(KeystoreBusy) as busy, rotation_lock(keystore, timeout_s=0.2):
            pass  # the same process, another open of the file: flock refuses it too
        assert busy.value.holder == os.getpid()

        def second() -> None:
            with rotation_lock(keystore, timeout_s=30.0):
                entered.set()

        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.5)  # it waits while we hold the lock
    thread.join(30)
    assert entered.is_set()


def test_another_process_holding_the_lock_excludes_this_one_until_it_ends(tmp_path: Path) -> None:
    keystore = tmp_path / "water-2.json"
    script = textwrap.dedent(f"""
        import sys
        from keys.rotating import rotation_lock
        with rotation_lock({str(keystore)!r}, timeout_s=5.0):
            print("held", flush=True)
            sys.stdin.readline()
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(KeystoreBusy, match=f"process {holder.pid}"), rotation_lock(keystore, timeout_s=0.3):
            pass
        holder.kill()  # a holder that dies releases the lock with its descriptor
        holder.wait(10)
        with rotation_lock(keystore, timeout_s=5.0):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_the_pending_record_round_trips_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    keystore = tmp_path / "water-2.json"
    assert read_pending_rotation(keystore) is None
    pending = PendingRotation(ADDRESS.lower(), 3, b"\x07" * 32)
    record_pending_rotation(keystore, pending)
    back = read_pending_rotation(keystore)
    assert back is not None and (back.key_epoch, back.pq_key_hash) == (3, b"\x07" * 32)
    assert back.address.lower() == ADDRESS
    assert oct(pending_rotation_path(keystore).stat().st_mode & 0o777) == "0o600"
    pending_rotation_path(keystore).write_text('{"address": "0x12", "key_epoch": 3}')
    with pytest.raises(KeystoreCorrupt):
        read_pending_rotation(keystore)
    clear_pending_rotation(keystore)
    clear_pending_rotation(keystore)  # nothing pending: nothing to do
    assert read_pending_rotation(keystore) is None


def test_neither_file_passes_for_a_keystore() -> None:
    """What lists keystores takes ``*.json`` files (e.g. the governors'); these two are not keystores."""
    keystore = Path("keystores/oracles/water-2.json")
    for path in (rotation_lock_path(keystore), pending_rotation_path(keystore)):
        assert path.parent == keystore.parent and path.suffix != ".json"


def test_a_symlink_planted_as_the_lock_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    keystore = tmp_path / "oracle.json"
    keystore.write_text('{"a keystore": true}\n')
    rotation_lock_path(keystore).symlink_to(keystore)  # the lock's pid write would replace the keystore
    with pytest.raises(KeystoreError, match="symbolic link"), rotation_lock(keystore, timeout_s=0.0):
        pass
    assert keystore.read_text() == '{"a keystore": true}\n'
