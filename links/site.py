"""Setting up a data directory's links: the plan, every SAE's keys, the directory and the dev PKI.

`qeaims up` calls `prepare` before it starts anything, so the KME and every component find what
they need under ``<home>/links`` (`links.files`). It is idempotent: keys and certificates that
exist are kept (a restart must not change an SAE's identity), and the plan is rewritten, so a city
restarted with other sectors gets the links it needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from links.endpoint import ensure_endpoints
from links.files import LinkFiles
from links.pki import DevPki
from links.plan import LinkPlan

__all__ = ["disable", "prepare", "read_status", "write_status"]


def prepare(files: LinkFiles, plan: LinkPlan) -> None:
    """Write the plan, make any missing SAE keys (public halves into the directory) and certificates."""
    files.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    ensure_endpoints(files.directory, files.endpoints, plan.saes())
    DevPki(files.pki).ensure_all(plan)
    plan.save(files.plan)


def disable(files: LinkFiles) -> None:
    """Plaintext links from now on (`qeaims up --no-links`): the plan goes, keys and sessions stay."""
    files.plan.unlink(missing_ok=True)


def write_status(files: LinkFiles, sae_id: str, status: dict[str, Any]) -> None:
    """An SAE's link status for `qeaims link status` (epochs, modes, counters: never key material)."""
    path = files.state / f"{sae_id}.status.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(status, sort_keys=True, default=str))
    os.replace(tmp, path)


def read_status(files: LinkFiles) -> dict[str, dict[str, Any]]:
    """Every SAE's last written status, by SAE id (a damaged or half-written file is skipped)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(files.state).glob("*.status.json")) if files.state.is_dir() else ():
        try:
            out[path.name.removesuffix(".status.json")] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out
