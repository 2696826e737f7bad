"""The development city's API tokens: one per role, written by `qeaims up` to `<home>/api/dev-tokens.json`.

A development city is opened in a browser right after `make demo`, by someone who has not yet chosen
who holds which token; so `qeaims up` makes one for each role it runs: an auditor, an operator per
running sector and a governor per governor keystore the development deployment made (the council's
members, `chain.deploy.governor_keystore`). Unlike `tokens.json` (digests only), this file holds
the tokens themselves, mode 0600, for the machine's own user; a production site adds its tokens with
`qeaims serve token add` and never runs `qeaims up`.

Tokens already written are kept (a restart does not log every browser out); a sector started later
gets its operator's token added, and a token removed with `qeaims serve token remove` is made anew.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

from api.auth import Role, TokenStore
from core.config import Settings
from core.messages import Sector

__all__ = ["DEV_TOKENS_FILE", "DevToken", "dev_tokens_path", "ensure_dev_tokens"]

DEV_TOKENS_FILE = "dev-tokens.json"


@dataclass(frozen=True)
class DevToken:
    label: str
    role: Role
    token: str
    sector: str | None = None
    governor: str | None = None


def dev_tokens_path(settings: Settings) -> Path:
    return settings.home / "api" / DEV_TOKENS_FILE


def _wanted(settings: Settings, sectors: Sequence[Sector]) -> list[tuple[str, Role, str | None, str | None]]:
    """(label, role, sector, governor) of every development token."""
    wanted: list[tuple[str, Role, str | None, str | None]] = [("dev-auditor", "auditor", None, None)]
    wanted += [(f"dev-operator-{s.value}", "operator", s.value, None) for s in sectors]
    governors = sorted(p.stem for p in (settings.keystore_dir / "governors").glob("*.json"))
    wanted += [(f"dev-governor-{g}", "governor", None, g) for g in governors]
    return wanted


def _read(path: Path) -> dict[str, DevToken]:
    try:
        raw = json.loads(path.read_text())
        return {t["label"]: DevToken(label=t["label"], role=cast(Role, t["role"]), token=t["token"],
                                     sector=t.get("sector"), governor=t.get("governor")) for t in raw["tokens"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # missing or damaged: its tokens are made anew (the store's entries are replaced by label)


def ensure_dev_tokens(settings: Settings, sectors: Sequence[Sector], url: str) -> Path:
    """Make the development tokens that are missing (or no longer accepted) and write the file; its path."""
    path = dev_tokens_path(settings)
    store = TokenStore(path.parent)
    known = _read(path)
    out: list[DevToken] = []
    for label, role, sector, governor in _wanted(settings, sectors):
        have = known.get(label)
        found = store.lookup(have.token) if have is not None else None
        if have is not None and found is not None and found.label == label:
            out.append(have)
            continue
        out.append(DevToken(label, role, store.add(role, label, sector=sector, governor=governor), sector, governor))
    kept_others = [t for label, t in known.items() if label not in {t.label for t in out}
                   and store.lookup(t.token) is not None]  # an earlier run's sectors: still valid, still listed
    body = {"note": "development tokens for this machine's city; send one as 'Authorization: Bearer <token>' or "
                    "paste it into the dashboard's sign-in",
            "url": url, "tokens": [asdict(t) for t in out + kept_others]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover temporary file keeps its old mode otherwise
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle, indent=1)
    os.replace(tmp, path)
    return path
