"""The two files beside a keystore that make rotating its key safe to run twice at once, and to retry.

``<keystore>.rotate.lock`` serialises rotations of one keystore: an exclusive ``fcntl.flock`` that
threads (each opens the file, so each holds its own open file description) and processes both
respect. Two rotations that read the same key epoch and both went on would leave the keystore two
epochs ahead of the registry, or holding a key the registry does not hold (review s38b, finding 4).
The lock file is never deleted: unlinking it while another process waits on the old inode would let a
third lock a new file at the same path. It holds the pid of the last holder, for the busy message.

``<keystore>.rotating`` records the rotation this keystore sent (or is about to send) and has not yet
seen on the chain: its account, key epoch and key hash. A rotation that timed out waiting for the
chain leaves it, so that running the rotation again, once the first transaction has been mined,
recognises that rotation as done instead of rotating a second time (finding 5). Neither name ends
in ``.json``: they are not keystores, and what lists keystores must not take them for one.

These are the keys layer's only part of rotating: the chain side (what to send and when the record
is settled) is ``chain.rotation``.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from keys._abi import checksum
from keys.errors import InvalidInput, KeystoreBusy, KeystoreCorrupt, KeystoreError
from keys.files import FILE_MODE, atomic_write, ensure_private_dir

__all__ = ["PendingRotation", "clear_pending_rotation", "pending_rotation_path", "read_pending_rotation",
           "record_pending_rotation", "rotation_lock", "rotation_lock_path"]

_POLL_S = 0.05


def rotation_lock_path(keystore: Path | str) -> Path:
    """``name.json.rotate.lock`` beside the keystore."""
    keystore = Path(keystore)
    return keystore.with_name(f"{keystore.name}.rotate.lock")


def pending_rotation_path(keystore: Path | str) -> Path:
    """``name.json.rotating`` beside the keystore."""
    keystore = Path(keystore)
    return keystore.with_name(f"{keystore.name}.rotating")


@contextmanager
def rotation_lock(keystore: Path | str, *, timeout_s: float) -> Iterator[None]:
    """Hold the keystore's rotation lock for the block; wait up to ``timeout_s`` for it.

    Polls a non-blocking ``flock`` rather than blocking in the kernel, so a wait is bounded and a
    thread waiting can still be joined. Raises :class:`KeystoreBusy` (naming the holder's pid) when
    another rotation holds it longer: that rotation is still running, and this one can be run again
    once it ends. The lock goes with the descriptor, so a process that dies releases it."""
    keystore = Path(keystore)
    path = rotation_lock_path(keystore)
    try:
        ensure_private_dir(path.parent)
        # never through a symlink: the lock's pid is written into the file, and a link planted there (to
        # the keystore itself) had that write replace the keystore (review s39, hardening)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    except OSError as exc:
        raise KeystoreError(f"cannot open the rotation lock {path}: {exc.strerror or exc}"
                            + (" (it is a symbolic link; remove it)" if path.is_symlink() else ""), path=path) from exc
    try:
        facts = os.fstat(fd)
        if not stat.S_ISREG(facts.st_mode) or facts.st_nlink != 1:
            # a hard link planted there (to the keystore) would have the pid write replace what it links to
            # (review s39b finding 4); the lock is a file of its own, made by `rotation_lock`
            raise KeystoreError(f"the rotation lock {path} is not a file of its own ({facts.st_nlink} links); "
                                "remove it", path=path)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise KeystoreBusy(keystore, holder=_holder(fd), waited_s=timeout_s) from None
                time.sleep(_POLL_S)
        with suppress(OSError):  # the pid is for the busy message only
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class PendingRotation:
    """A rotation this keystore sent, or is about to send, to ``key_epoch`` with the key ``pq_key_hash``."""

    address: str
    key_epoch: int
    pq_key_hash: bytes


def record_pending_rotation(keystore: Path | str, pending: PendingRotation) -> None:
    """Write the record (atomically, 0600) before the rotation is sent; replaces any older record."""
    path = pending_rotation_path(keystore)
    body = {"address": pending.address, "key_epoch": pending.key_epoch, "pq_key_hash": "0x" + pending.pq_key_hash.hex()}
    try:
        atomic_write(path, (json.dumps(body, indent=2) + "\n").encode("ascii"), overwrite=True)
    except OSError as exc:
        raise KeystoreError(f"cannot write the pending-rotation record {path}: {exc.strerror or exc}",
                            path=path) from exc


def read_pending_rotation(keystore: Path | str) -> PendingRotation | None:
    """The record, or None when the keystore has no rotation pending. A record that cannot be read is
    `KeystoreCorrupt` naming it: guessing whether its rotation was sent could rotate twice."""
    path = pending_rotation_path(keystore)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeystoreError(f"cannot read {path}: {exc.strerror or exc}", path=path) from exc
    try:
        body = json.loads(raw)
        epoch, key_hash = body["key_epoch"], bytes.fromhex(str(body["pq_key_hash"]).removeprefix("0x"))
        if set(body) != {"address", "key_epoch", "pq_key_hash"} or isinstance(epoch, bool) or not isinstance(epoch, int) \
                or len(key_hash) != 32:
            raise ValueError("unexpected fields")
        return PendingRotation(checksum(body["address"], "address"), epoch, key_hash)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, InvalidInput) as exc:
        raise KeystoreCorrupt(path, "it is not a pending-rotation record (address, key_epoch, pq_key_hash); "
                                    "check the registry by hand before deleting it") from exc


def clear_pending_rotation(keystore: Path | str) -> None:
    """Delete the record once the chain holds its rotation (nothing to do when there is none)."""
    path = pending_rotation_path(keystore)
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise KeystoreError(f"cannot delete {path}: {exc.strerror or exc}", path=path) from exc
