"""Where a site's link material lives: ``<home>/links/`` (one place, so every process agrees).

::

    plan.json                the link plan (`links.plan`), written by `qeaims up` or `qeaims link setup`
    directory.json           every SAE's public keys (ML-KEM-768, X25519, ML-DSA-65, Ed25519)
    endpoints/<sae>.json     one SAE's private keys (0600)
    pki/                     the development CA, the KME's server certificate, one client certificate per SAE
    state/<sae>.json         the SAE's sessions (secret: their AES keys), written before a ciphertext leaves
    state/<sae>.<reader>.json  one reading client's replay windows
    kme-state.json           the KME's key pools

In a real deployment each SAE's site holds only its own ``endpoints/`` and ``state/`` files and a
copy of the directory and the plan; the development city keeps them in one data directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["LinkFiles"]


@dataclass(frozen=True)
class LinkFiles:
    root: Path

    @classmethod
    def of(cls, home: Path) -> LinkFiles:
        return cls(home / "links")

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def directory(self) -> Path:
        return self.root / "directory.json"

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def kme_state(self) -> Path:
        return self.root / "kme-state.json"

    def endpoint_keys(self, sae_id: str) -> Path:
        return self.endpoints / f"{sae_id}.json"

    def sae_state(self, sae_id: str, reader: str = "") -> Path:
        return self.state / (f"{sae_id}.{reader}.json" if reader else f"{sae_id}.json")

    @property
    def enabled(self) -> bool:
        """Whether this data directory runs its links encrypted (a plan exists)."""
        return self.plan.is_file()
