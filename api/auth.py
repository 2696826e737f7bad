"""Who may do what: bearer tokens per role, kept hashed in `<home>/api/tokens.json`.

Roles (docs/api.md): the public needs nothing; an *auditor* reads everything; an *operator* of a
sector reads that sector's detail and posts its crisis notices; a *governor* reads like an auditor
and acts through the council. A token only says who is asking: a governor's approval is still signed
with that governor's own hybrid keystore, unlocked by its passphrase at the confirmation step, so a
stolen token reads but cannot approve (api/routers/governance.py).

Tokens are stored as SHA-256 digests (a leaked file gives no token) and compared in constant time.
A browser's `EventSource` cannot send a header, so `POST /api/v1/session` also sets an HttpOnly,
SameSite=Strict cookie; the cookie is honoured on GET only, so no state change can ride on it (CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from pydantic import BaseModel, Field, ValidationError, model_validator

from core.errors import ConfigError
from core.sectors import Sector

__all__ = ["COOKIE", "GOVERNOR_NAME", "Principal", "Role", "TokenStore", "authenticated", "principal", "require", "require_sector"]

Role = Literal["auditor", "operator", "governor"]
COOKIE = "qeaims_session"
TOKENS_FILE = "tokens.json"
GOVERNOR_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # keystores/governors/<name>.json: a file name, never a path


class TokenEntry(BaseModel):
    """One token as stored: its digest, never the token."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Role
    label: str = Field(min_length=1, max_length=80)
    sector: str | None = None
    governor: str | None = None

    @model_validator(mode="after")
    def _scoped(self) -> TokenEntry:
        if self.role == "operator":
            if self.sector is None:
                raise ValueError("an operator's token names its sector")
            self.sector = Sector(self.sector).value
        elif self.sector is not None:
            raise ValueError(f"a {self.role}'s token has no sector")
        if (self.role == "governor") != (self.governor is not None):
            raise ValueError("a governor's token, and only it, names the governor")
        if self.governor is not None and GOVERNOR_NAME.fullmatch(self.governor) is None:
            raise ValueError("a governor's name is 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit "
                             "(it names the governor's keystore file)")
        return self


@dataclass(frozen=True)
class Principal:
    """Who is asking: the role, the operator's sector or the governor's name, and the token's label."""

    role: Role
    label: str
    sector: str | None = None
    governor: str | None = None

    def may_read_sector(self, sector: str) -> bool:
        return self.role != "operator" or self.sector == sector


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The tokens file: read on each lookup (a token added or removed from the command takes effect at
    once, with no restart), written atomically with mode 0600."""

    def __init__(self, api_dir: Path) -> None:
        self.path = api_dir / TOKENS_FILE

    def entries(self) -> list[TokenEntry]:
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text())
            return [TokenEntry.model_validate(item) for item in raw["tokens"]]
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
            raise ConfigError(f"{self.path} is damaged ({type(exc).__name__}); restore it or add the tokens again "
                              "with `qeaims serve token add`") from None

    def add(self, role: Role, label: str, *, sector: str | None = None, governor: str | None = None) -> str:
        """A new token for `role`, returned once: only its digest is kept."""
        token = "qe_" + secrets.token_urlsafe(32)
        try:
            entry = TokenEntry(sha256=_digest(token), role=role, label=label, sector=sector, governor=governor)
        except ValidationError as exc:
            raise ConfigError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        entries = [e for e in self.entries() if e.label != label] + [entry]
        self._write(entries)
        return token

    def remove(self, label: str) -> bool:
        entries = self.entries()
        kept = [e for e in entries if e.label != label]
        self._write(kept)
        return len(kept) != len(entries)

    def lookup(self, token: str) -> Principal | None:
        digest = _digest(token)
        found: TokenEntry | None = None
        for entry in self.entries():  # every entry compared: the time says nothing of which matched
            if hmac.compare_digest(entry.sha256, digest):
                found = entry
        if found is None:
            return None
        return Principal(role=found.role, label=found.label, sector=found.sector, governor=found.governor)

    def _write(self, entries: list[TokenEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"tokens": [e.model_dump() for e in entries]}, out, indent=1)
        os.replace(tmp, self.path)


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"})


def principal(request: Request) -> Principal | None:
    """The caller, or None when no credential was sent; a credential that is sent but wrong is a 401."""
    store: TokenStore = request.app.state.tokens
    header = request.headers.get("authorization")
    token: str | None = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorised("the Authorization header must be 'Bearer <token>'")
        token = value.strip()
    elif request.method == "GET":
        token = request.cookies.get(COOKIE)
    if token is None:
        return None
    found = store.lookup(token)
    if found is None:
        raise _unauthorised("this token is not known here (it may have been removed); ask for a new one")
    return found


def authenticated(who: Annotated[Principal | None, Depends(principal)]) -> Principal:
    if who is None:
        raise _unauthorised("this needs a token: send 'Authorization: Bearer <token>'")
    return who


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only `roles` through (403 naming the role that may)."""

    def check(who: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if who.role not in roles:
            article = "an" if who.role[0] in "aeiou" else "a"
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"{article} {who.role}'s token may not do this; it needs: {', '.join(roles)}")
        return who

    return check


def require_sector(who: Principal, sector: str) -> None:
    """403 when an operator asks for another sector's detail."""
    if not who.may_read_sector(sector):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"an operator of {who.sector} may not read {sector}'s detail")
