"""The KME's key store: per link, QKD key material; each key delivered to its master once, its slave once.

Lifecycle of a key: the QKD pair's final key bits go into the link's *pool* (Alice's copy for the
master's side, Bob's for the slave's: they are bit-identical after error correction and
verification, and a block where they are not is refused). ``enc_keys`` cuts keys of the requested
size from the pool, gives each a UUID and returns it to the master: the key is now *reserved* for
that link's slave. ``dec_keys`` returns a reserved key to the slave, once, and forgets it. A
compromised link loses its pool and its reserved keys (`discard`). A link keeps at most
`MAX_RESERVED` reserved keys: past that the oldest one expires (a slave that never fetches must not
make the state file, rewritten on every request, grow without end).

The reserved keys are written to the state file (atomically, 0600) after every change, before the
answer leaves the KME: a restarted KME still holds a key delivered to the master but not yet to the
slave. The pools are not: a key nobody has seen yet is worth nothing to keep (the QKD pair makes
more), and writing every block's bits would cost more than making them again.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError

__all__ = ["KeyStore", "StoreRefused"]


class StoreRefused(ConfigError):
    """A request the store cannot serve: `status` is the HTTP answer (400, 503), `details` per key."""

    def __init__(self, status: int, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.details = status, details or []


DISCARDED_REMEMBERED = 4096  # per link: ids of discarded keys, so a slave asking for one hears why
MAX_RESERVED = 1024  # per link: keys the master has and the slave never fetched are not kept forever
COMPROMISED, EXPIRED = "compromised", "expired"


@dataclass
class _Link:
    pool: bytearray = field(default_factory=bytearray)
    reserved: dict[str, bytes] = field(default_factory=dict)  # key id → key, delivered to the master only
    discarded: dict[str, str] = field(default_factory=dict)  # id → why it went (COMPROMISED, EXPIRED), oldest first

    def forget(self, key_id: str, why: str) -> None:
        self.discarded[key_id] = why
        while len(self.discarded) > DISCARDED_REMEMBERED:
            del self.discarded[next(iter(self.discarded))]


class KeyStore:
    """Every link's pool and reserved keys, behind one lock (the HTTP workers and the refill thread share it)."""

    def __init__(self, links: list[str], *, max_pool_bytes: int = 16 * 1024, max_reserved: int = MAX_RESERVED,
                 state_path: Path | None = None) -> None:
        self.max_pool_bytes, self.max_reserved = max_pool_bytes, max_reserved
        self.state_path = state_path
        self._lock = threading.Lock()
        self._links = {link_id: _Link() for link_id in links}
        if state_path is not None and state_path.is_file():
            self._load(state_path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            for link_id, saved in data["links"].items():
                if link_id in self._links:
                    self._links[link_id] = _Link(bytearray(),
                                                 {k: base64.b64decode(v) for k, v in saved["reserved"].items()})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"the KME's key store {path} is damaged ({exc}): move it away to start empty") from None

    def _save(self) -> None:
        if self.state_path is None:
            return
        body = {"links": {link_id: {"reserved": {k: base64.b64encode(v).decode() for k, v in s.reserved.items()}}
                          for link_id, s in self._links.items()}}
        self.state_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(body, out)
        os.replace(tmp, self.state_path)

    def add(self, link_id: str, master_copy: bytes, slave_copy: bytes) -> int:
        """Add a block's final key (both ends' copies); returns the bytes kept (the pool is capped)."""
        if master_copy != slave_copy:
            raise ConfigError(f"the QKD ends of {link_id} disagree on their final key: the block is refused")
        with self._lock:
            link = self._links[link_id]
            room = max(0, self.max_pool_bytes - len(link.pool))
            link.pool.extend(master_copy[:room])
            return min(room, len(master_copy))

    def available_bytes(self, link_id: str) -> int:
        with self._lock:
            return len(self._links[link_id].pool)

    def reserved_count(self, link_id: str) -> int:
        with self._lock:
            return len(self._links[link_id].reserved)

    def take_for_master(self, link_id: str, number: int, size_bits: int) -> list[tuple[str, bytes]]:
        """`number` new keys of `size_bits` for the master, reserved for the slave; 503 if the pool is short."""
        need = number * size_bits // 8
        with self._lock:
            link = self._links[link_id]
            if len(link.pool) < need:
                raise StoreRefused(503, f"keys not available: {len(link.pool) * 8 // size_bits} key(s) of "
                                        f"{size_bits} bits in store for this link, {number} asked; the QKD pair "
                                        "is making more, ask again shortly")
            out = []
            for _ in range(number):
                key = bytes(link.pool[:size_bits // 8])
                del link.pool[:size_bits // 8]
                key_id = str(uuid.uuid4())
                link.reserved[key_id] = key
                if len(link.reserved) > self.max_reserved:  # the oldest the slave never fetched
                    oldest = next(iter(link.reserved))
                    del link.reserved[oldest]
                    link.forget(oldest, EXPIRED)
                out.append((key_id, key))
            self._save()
            return out

    def give_to_slave(self, link_id: str, key_ids: list[str]) -> list[tuple[str, bytes]]:
        """The reserved keys named, to the slave, once; 400 naming every id that is not one."""
        with self._lock:
            link = self._links[link_id]
            if len(set(key_ids)) != len(key_ids):
                raise StoreRefused(400, "a key_ID is named twice", [{"key_ID": k} for k in key_ids])
            gone = [k for k in key_ids if link.discarded.get(k) == COMPROMISED]
            if gone:
                raise StoreRefused(503, "keys not available: discarded when the QKD link was found compromised "
                                        "(an eavesdropper was suspected); start over with new keys",
                                   [{"key_ID": k, "reason": "discarded: link compromised"} for k in gone])
            expired = [k for k in key_ids if link.discarded.get(k) == EXPIRED]
            if expired:
                raise StoreRefused(400, f"key_ID expired: the KME keeps the last {self.max_reserved} keys the "
                                        "master was given and the slave did not fetch",
                                   [{"key_ID": k, "reason": "expired"} for k in expired])
            unknown = [k for k in key_ids if k not in link.reserved]
            if unknown:
                raise StoreRefused(400, "key_ID not known for this link, or already delivered",
                                   [{"key_ID": k, "reason": "unknown or already consumed"} for k in unknown])
            out = [(k, link.reserved.pop(k)) for k in key_ids]
            self._save()
            return out

    def discard(self, link_id: str) -> int:
        """Forget every key of the link not yet delivered to both ends; returns how many bytes went."""
        with self._lock:
            link = self._links[link_id]
            gone = len(link.pool) + sum(len(v) for v in link.reserved.values())
            for key_id in link.reserved:
                link.forget(key_id, COMPROMISED)
            link.pool.clear()
            link.reserved.clear()
            self._save()
            return gone
