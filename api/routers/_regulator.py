"""Query parameters the regulator's routers share (events, exports, proofs), each checked into one
plain 422 sentence: FastAPI's own validation would accept any string, and a name that is not a node,
or a sector that does not exist, must be the caller's error, never a 403 or a 500 from below."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import HTTPException, status

from api.auth import Principal, require_sector
from core.errors import ConfigError
from core.kinds import kind_by_name
from core.sectors import Sector
from keys.errors import KeysError
from keys.ids import to_bytes32

__all__ = ["ADDRESS", "check_address", "check_cursor", "check_kind", "check_node", "check_sector",
           "check_time", "sector_for"]

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}\Z")
_CURSOR = re.compile(r"^([0-9]{1,12}):([0-9]{1,9})\Z")
_EPOCH = re.compile(r"^[0-9]{1,12}\Z")
_LATEST = 253_402_300_799  # 9999-12-31T23:59:59Z


def _bad(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=message)


def check_time(name: str, value: str | None) -> int | None:
    """`since`/`until` as Unix seconds: ISO 8601 (2026-11-26T05:00:00Z; naive = UTC) or whole seconds."""
    if value is None:
        return None
    text = value.strip()
    if _EPOCH.match(text):
        seconds = int(text)
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _bad(f"{name} {value!r} is neither an ISO time (2026-11-26T05:00:00Z) nor Unix seconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = int(moment.timestamp())
    if not 0 <= seconds <= _LATEST:
        raise _bad(f"{name} {value!r} is outside 1970..9999")
    return seconds


def check_cursor(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = _CURSOR.match(value)
    if match is None:
        raise _bad(f"cursor {value!r} is not one this API gave (it looks like BLOCK:LOG_INDEX, e.g. 120:3)")
    return int(match.group(1)), int(match.group(2))


def check_kind(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return kind_by_name(value)
    except ConfigError as exc:
        raise _bad(str(exc)) from None


def check_node(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        to_bytes32(value)
    except KeysError as exc:
        raise _bad(f"node {value!r} is not a node name: {exc}") from None
    return value


def check_address(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not ADDRESS.match(value):
        raise _bad(f"{name} {value!r} is not an address (0x and 40 hex digits)")
    return value.lower()


def check_sector(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return Sector(value).value
    except ConfigError as exc:
        raise _bad(str(exc)) from None


def sector_for(who: Principal, asked: str | None) -> str | None:
    """The sector a request reads: what it asked (checked), an operator's own when it asked none, and
    a 403 when an operator asks for another sector."""
    sector = check_sector(asked)
    if who.role == "operator":
        assert who.sector is not None  # TokenEntry: an operator's token names its sector
        if sector is None:
            return who.sector
        require_sector(who, sector)
    return sector
