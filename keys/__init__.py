"""Hybrid (secp256k1 + ML-DSA-65) identities, keystores and signed messages for QEAIMS oracles.

Modules, one job each:

- :mod:`keys.identity` — the two private keys of an oracle and ML-DSA verification.
- :mod:`keys.keystore` — encrypted, atomically written keystore files and key rotation on disk.
- :mod:`keys.messages` — the exact domain-separated bytes that get signed (shared with Solidity).
- :mod:`keys.hybrid` — signing and verifying batches, registrations and rotations.
- :mod:`keys.ids` — bytes32 names and event ids.
- :mod:`keys.errors` — the :class:`KeysError` tree.
- :mod:`keys.files` — crash-safe private file writes (keystores, vaults).
"""

from keys.errors import (
    InvalidBatch,
    InvalidInput,
    InvalidKey,
    InvalidName,
    InvalidSignature,
    KeysError,
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
