"""What the vault service is about to do, written down before it does it, so a crash is finished and
nothing planted is.

A write, a read and a shredding each change the vault's files and then append an event to the
recorder's outbox. A crash between the two leaves a file change without its event; `recover` must
append it. But `recover` must not record what the service never did: a record file, an access-log
line or a tombstone planted by someone with a shell and no key would otherwise be signed into the
chain by the vault's own recorder (the review's V3-V5). So before each change the service appends an
*intent* here (fsynced), and `recover` acts on intents alone.

Each line is ``{"op", "fields", "mac"}`` with an HMAC-SHA256 over the op and the canonical fields,
under a key derived (HKDF) from the recorder's secp256k1 private key and the vault's name: the service
holds it, a file-planter does not, and a line moved from another vault does not verify. Lines that
do not verify are ignored (and counted), never acted on. `prune` drops the intents that are done.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keys.files import atomic_write

__all__ = ["Intent", "IntentJournal", "intent_key"]


def intent_key(recorder_private_key: bytes, vault: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"qeaims-vault-intents-v1\x00" + vault.encode()).derive(recorder_private_key)


@dataclass(frozen=True)
class Intent:
    op: str  # write | read | shred
    fields: dict[str, Any]


class IntentJournal:
    def __init__(self, path: Path, key: bytes) -> None:
        self.path, self._key = path, key
        self.forged = 0  # lines that did not verify at the last read

    def _mac(self, op: str, fields: dict[str, Any]) -> str:
        return hmac.new(self._key, json.dumps([op, fields], sort_keys=True).encode(), sha256).hexdigest()

    def add(self, *intents: Intent) -> None:
        """Append the intents, fsynced, before the service acts on them."""
        if not intents:
            return
        data = "".join(json.dumps({"op": i.op, "fields": i.fields, "mac": self._mac(i.op, i.fields)},
                                  sort_keys=True) + "\n" for i in intents).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> list[Intent]:
        """The intents whose MAC verifies, in order (a torn or forged line is skipped and counted)."""
        self.forged = 0
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        out: list[Intent] = []
        for line in lines:
            try:
                body = json.loads(line)
                op, fields, mac = str(body["op"]), dict(body["fields"]), str(body["mac"])
            except (ValueError, KeyError, TypeError):
                self.forged += 1
                continue
            if hmac.compare_digest(mac, self._mac(op, fields)):
                out.append(Intent(op, fields))
            else:
                self.forged += 1
        return out

    def prune(self, keep: list[Intent]) -> None:
        """Rewrite the journal with only ``keep`` (the intents not done yet)."""
        data = "".join(json.dumps({"op": i.op, "fields": i.fields, "mac": self._mac(i.op, i.fields)},
                                  sort_keys=True) + "\n" for i in keep).encode()
        atomic_write(self.path, data, overwrite=True)
