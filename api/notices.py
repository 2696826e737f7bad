"""Crisis notices: the text kept here, its digest on the chain, and the check that the two agree.

The store is `<home>/api/notices.sqlite` (one table; the API's own, never the chain index). Posting a
notice records a ``notice`` event first, signed with the control room's identity
(`chain.control_room`), whose payload carries the SHA-256 of the notice's canonical bytes
(`chain.notices.canonical_notice`), and only then stores the row: a row never exists without the event
it claims. Reading a notice judges it against the chain (`verdict`): it is verified only if a counting
``notice`` event for its id exists (the control room recorded it, its batch verifies: `chain.notices`)
and the digest recomputed from the stored fields equals the one on-chain. A row altered in the store, or
inserted without an event, is shown with the reason it does not verify; nothing here trusts the store.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chain.notices import NoticeRecord, canonical_notice, notice_digest

__all__ = ["Notice", "NoticeStore", "Verdict", "new_notice", "verdict"]

STORE_FILE = "notices.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notices (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    audience TEXT NOT NULL, sector TEXT NOT NULL, district TEXT NOT NULL, text TEXT NOT NULL,
    created TEXT NOT NULL, author TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_audience ON notices(audience, n);
"""

_COLUMNS = "n, id, audience, sector, district, text, created, author"


@dataclass(frozen=True)
class Notice:
    """One notice as stored; `n` is its place in the store (the list's cursor), not part of the notice."""

    id: str
    audience: str
    sector: str
    district: str
    text: str
    created: str  # ISO 8601, UTC, seconds
    author: str  # the posting token's label
    n: int = 0

    def canonical(self) -> bytes:
        return canonical_notice(id=self.id, audience=self.audience, sector=self.sector, district=self.district,
                                text=self.text, created=self.created, author=self.author)

    @property
    def sha256(self) -> str:
        return notice_digest(self.canonical())


def new_notice(*, audience: str, sector: str, district: str, text: str, author: str) -> Notice:
    """A notice with a fresh random id (128 bits: an id is never reused, even after the store is lost)."""
    return Notice(id=secrets.token_hex(16), audience=audience, sector=sector, district=district, text=text,
                  created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), author=author)


class NoticeStore:
    """The notices file; one short-lived connection per call (request handlers run on many threads)."""

    def __init__(self, api_dir: Path) -> None:
        self.path = api_dir / STORE_FILE
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        return db

    def add(self, notice: Notice) -> Notice:
        with self._lock:
            db = self._connect()
            try:
                cursor = db.execute(f"INSERT INTO notices({_COLUMNS.removeprefix('n, ')}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                    (notice.id, notice.audience, notice.sector, notice.district, notice.text,
                                     notice.created, notice.author))
                n = int(cursor.lastrowid or 0)
            finally:
                db.close()
        return Notice(**{**notice.__dict__, "n": n})

    def known(self, ids: list[str]) -> set[str]:
        """Which of `ids` the store holds."""
        db = self._connect()
        try:
            found: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                found |= {str(r[0]) for r in db.execute(
                    f"SELECT id FROM notices WHERE id IN ({', '.join('?' * len(chunk))})", chunk)}
            return found
        finally:
            db.close()

    def page(self, *, visible: tuple[str, ...] | None, own_sector: str | None, audience: str | None,
             sector: str | None, district: str | None, before: int | None, limit: int) -> list[Notice]:
        """Newest first, at most `limit`, `n` below `before`: the notices the reader may see (audience in
        `visible`, None for all, or about `own_sector`: an operator reads its own sector's notices whatever
        their audience), narrowed by `audience`, `sector` and `district`."""
        where: list[str] = []
        args: list[object] = []
        if visible is not None:
            clause = f"audience IN ({', '.join('?' * len(visible))})" if visible else "0"
            args += list(visible)
            if own_sector is not None:
                clause = f"({clause} OR sector = ?)"
                args.append(own_sector)
            where.append(clause)
        for column, value in (("audience", audience), ("sector", sector), ("district", district)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if before is not None:
            where.append("n < ?")
            args.append(before)
        sql = (f"SELECT {_COLUMNS} FROM notices {'WHERE ' + ' AND '.join(where) if where else ''} "
               "ORDER BY n DESC LIMIT ?")
        db = self._connect()
        try:
            rows = db.execute(sql, (*args, limit)).fetchall()
        finally:
            db.close()
        return [Notice(n=int(r[0]), id=str(r[1]), audience=str(r[2]), sector=str(r[3]), district=str(r[4]),
                       text=str(r[5]), created=str(r[6]), author=str(r[7])) for r in rows]


@dataclass(frozen=True)
class Verdict:
    """Whether a stored notice is what the control room recorded, and if not, why."""

    verified: bool
    reason: str | None
    event: NoticeRecord | None  # the counting event for its id, if any
    public_reason: str | None = None  # `reason` naming no address, for readers without a token (None: the same)

    @property
    def reason_for_public(self) -> str | None:
        return self.reason if self.public_reason is None else self.public_reason


def verdict(notice: Notice, records: list[NoticeRecord]) -> Verdict:
    """`notice` judged against every ``notice`` event on the chain (`chain.notices.notice_records`)."""
    mine = [r for r in records if r.id == notice.id]
    counting = next((r for r in mine if r.counts), None)
    if counting is None:
        if mine:
            return Verdict(False, f"its only on-chain event does not count: {mine[0].reason}", None,
                           f"its only on-chain event does not count: {mine[0].reason_for_public}")
        return Verdict(False, "no notice event for this id on the chain (inserted into the store, or not yet "
                              "indexed)", None)
    if counting.audience != notice.audience or counting.sector != notice.sector:
        return Verdict(False, f"the chain records it for audience {counting.audience} of {counting.sector}, the "
                              f"store says {notice.audience} of {notice.sector}", counting)
    if notice.sha256 != counting.sha256:
        return Verdict(False, "the stored notice does not hash to the SHA-256 recorded on-chain (altered after "
                              "it was recorded)", counting)
    return Verdict(True, None, counting)
