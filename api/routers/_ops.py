"""What the operations routers (nodes, oracles, isolations, intel) share: paging, names, the replayed registry.

Not a router (the leading underscore keeps `create_app` from mounting it). Lists page by an opaque cursor,
``"<block>:<log_index>"`` of the last item returned (the on-chain position the item began at), so a page
never shifts under a reader while new items arrive after it. `RegistryHistory` is replayed once per index
head and shared by every request until the follower moves the head (the replay reads every registry log).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import HTTPException, Query, status
from pydantic import BaseModel

from api.auth import Principal, require_sector
from chain.registry_history import Position, RegistryHistory
from core.errors import UnknownSector
from core.sectors import Sector
from keys.errors import KeysError
from keys.ids import from_bytes32

__all__ = ["CURSOR_PATTERN", "Cursor", "Limit", "Page", "at_time", "history", "jsonable", "meta", "name_of", "page",
           "per_head", "readable_sectors", "sector_filter", "timestamps", "tx_of"]

CURSOR_PATTERN = r"^\d{1,12}:\d{1,9}$"
Limit = Annotated[int, Query(ge=1, le=500, description="items per page (1..500)")]
Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN, max_length=24,
                                     description="next_cursor of the previous page (opaque)")]

T = TypeVar("T")


class Page(BaseModel):
    """Every list's envelope: the items and the cursor of the next page (null on the last one)."""

    next_cursor: str | None


def _position(cursor: str) -> Position:
    block, _, index = cursor.partition(":")
    return int(block), int(index)


def page(items: Sequence[T], position: Callable[[T], Position], limit: int, cursor: str | None) -> tuple[list[T], str | None]:
    """`items` (in chain order) after `cursor`, at most `limit`, and the next page's cursor."""
    after = _position(cursor) if cursor is not None else (-1, -1)
    rest = [item for item in items if position(item) > after]
    chosen = rest[:limit]
    more = len(rest) > limit
    last = position(chosen[-1]) if chosen else None
    return chosen, (f"{last[0]}:{last[1]}" if more and last is not None else None)


def name_of(raw: str | bytes) -> str:
    """A bytes32 name (sector, node, kind) as text; its hex when it is no printable name."""
    value = bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw)
    try:
        return from_bytes32(value)
    except KeysError:
        return "0x" + value.hex()


def sector_filter(who: Principal, sector: str | None) -> str | None:
    """The sector a list is limited to: the one asked for (404 unknown, 403 another operator's), else an
    operator's own, else none (auditors and governors see every sector)."""
    if sector is None:
        return who.sector if who.role == "operator" else None
    try:
        name = Sector(sector).value
    except UnknownSector:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{sector[:40]!r} is not a sector") from None
    require_sector(who, name)
    return name


def readable_sectors(who: Principal, sector: str | None) -> Callable[[str], bool]:
    """Whether an item of a sector (its name) belongs in this caller's answer."""
    chosen = sector_filter(who, sector)
    return (lambda _s: True) if chosen is None else (lambda s: s == chosen)


def at_time(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(int(timestamp), UTC)


_cache_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[str, Any]] = {}


def _head(db: sqlite3.Connection) -> str:
    row = db.execute("SELECT value FROM meta WHERE key = 'last_block'").fetchone()
    registry = db.execute("SELECT value FROM meta WHERE key = 'registry'").fetchone()
    return f"{registry[0] if registry else ''}@{row[0] if row else -1}"


def per_head(db: sqlite3.Connection, what: str, compute: Callable[[], T]) -> T:
    """`compute()` once per index head: replays of the whole history are shared by every request until
    the follower moves the head (or the index is rebuilt for another deployment)."""
    path = str(db.execute("PRAGMA database_list").fetchone()[2])
    head = _head(db)
    with _cache_lock:
        cached = _cache.get((path, what))
        if cached is not None and cached[0] == head:
            found: T = cached[1]
            return found
    value = compute()
    with _cache_lock:
        _cache[(path, what)] = (head, value)
    return value


def history(db: sqlite3.Connection) -> RegistryHistory:
    """The registry replayed to the index's head (`per_head`)."""
    return per_head(db, "registry", lambda: RegistryHistory.from_db(db))


def meta(db: sqlite3.Connection, key: str) -> str:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return "" if row is None else str(row[0])


def timestamps(db: sqlite3.Connection, positions: Sequence[Position]) -> dict[Position, int | None]:
    """The block time of each log position (None where the index has none)."""
    out: dict[Position, int | None] = {}
    for block, index in positions:
        row = db.execute("SELECT timestamp FROM logs WHERE block = ? AND log_index = ?", (block, index)).fetchone()
        out[(block, index)] = None if row is None or row[0] is None else int(row[0])
    return out


def tx_of(db: sqlite3.Connection, position: Position) -> str | None:
    row = db.execute("SELECT tx_hash FROM logs WHERE block = ? AND log_index = ?", position).fetchone()
    return None if row is None else str(row[0])


ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}\Z")


def jsonable(value: Any) -> Any:
    """A payload's value as JSON (bytes as 0x hex)."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
