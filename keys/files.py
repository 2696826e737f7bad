"""Crash-safe, private file writes for key material.

A keystore must never be seen half-written (a crash would destroy the only copy of a key) and
never be readable by other local users. So we write to a temporary file in the same directory
(mode 0600 from creation), fsync it, move it into place atomically, then fsync the directory so
the rename itself survives a power cut.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import suppress
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "atomic_write", "ensure_private_dir"]

FILE_MODE = 0o600
DIR_MODE = 0o700


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` and any missing parents with mode 0700.

    Directories that already exist are left alone: tightening a shared directory such as ``/tmp``
    or a home directory would be a surprise, and is the operator's choice.
    """
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
        os.chmod(folder, DIR_MODE)  # mkdir's mode is reduced by the umask


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _place_without_clobber(tmp: str, path: Path) -> bool:
    """Move ``tmp`` to ``path`` only if ``path`` does not exist; False if it does.

    ``os.link`` fails atomically when the target exists, which an exists-then-rename check cannot
    guarantee. Filesystems without hard links fall back to that check.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if path.exists():
            return False
        os.replace(tmp, path)
        return True
    os.unlink(tmp)
    return True


def atomic_write(path: Path, data: bytes, *, overwrite: bool) -> bool:
    """Write ``data`` to ``path`` atomically with mode 0600.

    Returns False (and writes nothing) when ``overwrite`` is False and ``path`` already exists.
    Raises ``OSError`` for filesystem failures; no temporary file is left behind either way.
    """
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    placed = False
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # mkstemp already uses 0600; make it explicit
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
            placed = True
        else:
            placed = _place_without_clobber(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
    if placed:
        _fsync_dir(path.parent)
    return placed
