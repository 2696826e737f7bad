"""Hybrid (secp256k1 + ML-DSA-65) identities, keystores and signed messages for QEAIMS oracles.

Modules, one job each:

- :mod:`keys.identity` — the two private keys of an oracle and ML-DSA verification.
- :mod:`keys.keystore` — encrypted, atomically written keystore files and key rotation on disk.
- :mod:`keys.rotating` — the rotation lock and pending-rotation record beside a keystore.
- :mod:`keys.messages` — the exact domain-separated bytes that get signed (shared with Solidity).
- :mod:`keys.hybrid` — signing and verifying batches, registrations and rotations.
- :mod:`keys.ids` — bytes32 names and event ids.
- :mod:`keys.errors` — the :class:`KeysError` tree.
- :mod:`keys.files` — crash-safe private file writes (keystores, vaults).

The package re-exports the names below lazily (PEP 562): importing one light submodule, such as
``keys.errors`` for the CLI's error handling, runs this file, and an eager re-export would load
eth_account and the signers (about a second) in every command, including those that never sign.
``from keys import X`` is unchanged: the first access to X imports its submodule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from keys.errors import (
        InvalidBatch,
        InvalidInput,
        InvalidKey,
        InvalidName,
        InvalidSignature,
        KeysError,
        KeystoreBusy,
        KeystoreCorrupt,
        KeystoreError,
        KeystoreExists,
        KeystoreNotFound,
        WrongPassphrase,
    )
    from keys.hybrid import (
        RotationProof,
        SignedBatch,
        batch_message_for,
        sign_batch,
        sign_registration,
        sign_rotation,
        verify_batch,
        verify_registration,
        verify_rotation,
    )
    from keys.identity import (
        MLDSA65_PUBLIC_KEY_SIZE,
        MLDSA65_SIGNATURE_SIZE,
        HybridIdentity,
        pq_key_hash,
        verify_pq,
    )
    from keys.ids import event_id, from_bytes32, split_event_id, to_bytes32
    from keys.keystore import (
        DEFAULT_SCRYPT_N,
        KeystoreHeader,
        archive_path,
        load_keystore,
        read_keystore_header,
        rotate_keystore,
        save_keystore,
    )
    from keys.messages import (
        EVENT_BATCH_CONTEXT,
        REGISTRATION_CONTEXT,
        ROTATION_CONTEXT,
        EventToSign,
        batch_message,
        event_hash,
        registration_message,
        rotation_message,
    )

__all__ = [
    "DEFAULT_SCRYPT_N",
    "EVENT_BATCH_CONTEXT",
    "MLDSA65_PUBLIC_KEY_SIZE",
    "MLDSA65_SIGNATURE_SIZE",
    "REGISTRATION_CONTEXT",
    "ROTATION_CONTEXT",
    "EventToSign",
    "HybridIdentity",
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
    "KeystoreHeader",
    "KeystoreNotFound",
    "RotationProof",
    "SignedBatch",
    "WrongPassphrase",
    "archive_path",
    "batch_message",
    "batch_message_for",
    "event_hash",
    "event_id",
    "from_bytes32",
    "load_keystore",
    "pq_key_hash",
    "read_keystore_header",
    "registration_message",
    "rotate_keystore",
    "rotation_message",
    "save_keystore",
    "sign_batch",
    "sign_registration",
    "sign_rotation",
    "split_event_id",
    "to_bytes32",
    "verify_batch",
    "verify_pq",
    "verify_registration",
    "verify_rotation",
]

_SOURCES: dict[str, str] = {
    "DEFAULT_SCRYPT_N": "keys.keystore",
    "EVENT_BATCH_CONTEXT": "keys.messages",
    "MLDSA65_PUBLIC_KEY_SIZE": "keys.identity",
    "MLDSA65_SIGNATURE_SIZE": "keys.identity",
    "REGISTRATION_CONTEXT": "keys.messages",
    "ROTATION_CONTEXT": "keys.messages",
    "EventToSign": "keys.messages",
    "HybridIdentity": "keys.identity",
    "InvalidBatch": "keys.errors",
    "InvalidInput": "keys.errors",
    "InvalidKey": "keys.errors",
    "InvalidName": "keys.errors",
    "InvalidSignature": "keys.errors",
    "KeysError": "keys.errors",
    "KeystoreBusy": "keys.errors",
    "KeystoreCorrupt": "keys.errors",
    "KeystoreError": "keys.errors",
    "KeystoreExists": "keys.errors",
    "KeystoreHeader": "keys.keystore",
    "KeystoreNotFound": "keys.errors",
    "RotationProof": "keys.hybrid",
    "SignedBatch": "keys.hybrid",
    "WrongPassphrase": "keys.errors",
    "archive_path": "keys.keystore",
    "batch_message": "keys.messages",
    "batch_message_for": "keys.hybrid",
    "event_hash": "keys.messages",
    "event_id": "keys.ids",
    "from_bytes32": "keys.ids",
    "load_keystore": "keys.keystore",
    "pq_key_hash": "keys.identity",
    "read_keystore_header": "keys.keystore",
    "registration_message": "keys.messages",
    "rotate_keystore": "keys.keystore",
    "rotation_message": "keys.messages",
    "save_keystore": "keys.keystore",
    "sign_batch": "keys.hybrid",
    "sign_registration": "keys.hybrid",
    "sign_rotation": "keys.hybrid",
    "split_event_id": "keys.ids",
    "to_bytes32": "keys.ids",
    "verify_batch": "keys.hybrid",
    "verify_pq": "keys.identity",
    "verify_registration": "keys.hybrid",
    "verify_rotation": "keys.hybrid",
}
"""Where each re-exported name is defined: `__getattr__` imports that submodule on first access."""


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
