"""Errors raised by the ``keys`` package.

Every message is one plain line that tells an operator what went wrong and what to do, because
these errors surface directly in the ``qeaims`` CLI. Nothing here imports from the rest of the
project, so the project-wide error tree can later adopt :class:`KeysError` as a branch.

::

    KeysError
    ├── KeystoreError               problems with a keystore file on disk
    │   ├── KeystoreNotFound
    │   ├── KeystoreExists          refusing to overwrite a key
    │   ├── WrongPassphrase
    │   ├── KeystoreBusy            another rotation of it holds its lock
    │   └── KeystoreCorrupt         malformed, altered or inconsistent file
    ├── InvalidSignature            for callers that prefer an exception to ``False``
    └── InvalidInput (+ ValueError) caller passed something the protocol cannot encode
        ├── InvalidName             not a valid bytes32 ASCII name
        ├── InvalidBatch            empty batch, bad seq order, bad node or kind
        └── InvalidKey              wrong-size key, unusable rotation, bad epoch
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "InvalidBatch",
    "InvalidInput",
    "InvalidKey",
    "InvalidName",
    "InvalidSignature",
    "KeysError",
    "KeystoreBusy",
    "KeystoreCorrupt",
    "KeystoreError",
    "KeystoreExists",
    "KeystoreNotFound",
    "WrongPassphrase",
]


class KeysError(Exception):
    """Base of every error raised by ``keys``; catch this to handle them all."""


class KeystoreError(KeysError):
    """A keystore file could not be used; ``path`` names the file involved."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class KeystoreNotFound(KeystoreError):
    """The keystore path does not exist, so there is no key to load."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no keystore at {path}; check the path or create one first", path=path)


class KeystoreExists(KeystoreError):
    """Writing would replace an existing key, which could lose it for good."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"keystore {path} already exists; choose another path or rotate the key instead", path=path
        )


class WrongPassphrase(KeystoreError):
    """The passphrase does not open this keystore."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"wrong passphrase for keystore {path}", path=path)


class KeystoreBusy(KeystoreError):
    """Another rotation of this keystore (another thread or process) held its lock for the whole wait."""

    def __init__(self, path: Path, *, holder: int | None, waited_s: float) -> None:
        by = f" (process {holder})" if holder is not None else ""
        super().__init__(
            f"another rotation of keystore {path}{by} is still running after {waited_s:.0f} s; "
            "run the rotation again once it has ended", path=path)
        self.holder = holder


class KeystoreCorrupt(KeystoreError):
    """The file is not a keystore we can read, or it was altered after it was written."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"keystore {path} is unusable: {reason}", path=path)
        self.reason = reason


class InvalidSignature(KeysError):
    """A hybrid signature does not verify; raised only by callers that ask for an exception."""


class InvalidInput(KeysError, ValueError):
    """The caller passed a value the signed-message format cannot represent."""


class InvalidName(InvalidInput):
    """A name does not fit in a left-aligned ASCII bytes32."""


class InvalidBatch(InvalidInput):
    """An event batch breaks a rule the ledger contract also enforces."""


class InvalidKey(InvalidInput):
    """A key, key hash or key epoch is malformed or cannot be used as asked."""
