"""What the vault tests share: a sector key and writing or reading one record through every key level."""

from __future__ import annotations

from vaults.envelope import new_key, open_record, seal_record, unwrap_record_key, wrap_record_key
from vaults.store import VaultStore

SK = bytes(range(32))  # a fixed sector key: subprocesses in the tests must know it too


def write_record(store: VaultStore, record: str, version: int, text: bytes, sk: bytes = SK, epoch: int = 1) -> bool:
    rk = new_key()
    return store.put(seal_record(store.vault, record, version, text, rk),
                     wrap_record_key(store.vault, record, rk, sk, epoch, version=version), epoch)


def read_record(store: VaultStore, record: str, version: int | None = None, sk: bytes = SK) -> bytes:
    sealed = store.get(record, version)
    epoch, wrapped = store.record_key(record, sealed.version)
    return open_record(sealed, unwrap_record_key(store.vault, record, wrapped, sk, epoch, version=sealed.version))
