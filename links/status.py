"""The state of a city's secure links as one JSON-able object: what `qeaims link status` prints and
`GET /api/v1/links` returns.

It joins three views of each link: the plan (its ends and fibre), the KME (its QKD state, the last
block's QBER, keys in store) and the ends' own reports (the current session's epoch and mode,
envelopes sealed, opened and refused by reason). No key material is read or shown.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from core.errors import ConfigError, QeaimsError
from links.files import LinkFiles
from links.plan import OPERATIONS_SAE, LinkPlan
from links.site import read_status

__all__ = ["PlaintextLinks", "link_rows"]


class PlaintextLinks(ConfigError):
    """The data directory has no secure links (`qeaims up --no-links`, or never set up): nothing to show.
    A `ConfigError`, so the command's one `error:` line is unchanged; the API answers it with a 404."""


def _kme_states(plan: LinkPlan, files: LinkFiles) -> tuple[dict[str, dict[str, Any]], str]:
    """Each link's state as the KME reports it, or the reason the KME was not reached."""
    from links.kme.client import KmeClient  # lazily: the TLS client is only needed when links exist
    from links.pki import DevPki

    try:
        with KmeClient(plan.kme_url, OPERATIONS_SAE, DevPki(files.pki), timeout_s=3.0) as kme:
            return {s.link_id: s.model_dump() for s in kme.links()}, ""
    except QeaimsError as exc:
        return {}, str(exc)


def link_rows(home: Path) -> dict[str, Any]:
    """Every link's plan, QKD state and session: {"kme", "kme_error", "links": [...]}."""
    files = LinkFiles.of(home)
    if not files.enabled:
        raise PlaintextLinks("this data directory runs plaintext links: `qeaims up` sets up the secure ones")
    plan = LinkPlan.load(files.plan)
    kme, kme_error = _kme_states(plan, files)
    ends = read_status(files)

    def end(sae: str, link_id: str) -> dict[str, Any]:
        """What one end of a link last reported about it ({} if nothing yet)."""
        return ((ends.get(sae) or {}).get("links") or {}).get(link_id) or {}

    rows = []
    for link in plan.links:
        master, slave = end(link.master, link.link_id), end(link.slave, link.link_id)
        both = [master.get("stats") or {}, slave.get("stats") or {}]
        qkd = kme.get(link.link_id, {})
        last = qkd.get("last_block") or {}
        rows.append({
            "link": link.link_id, "master": link.master, "slave": link.slave, "distance_km": link.distance_km,
            "qkd_state": qkd.get("state", "unknown"), "qber": last.get("qber"), "keys_available":
            qkd.get("keys_available"), "epoch": master.get("epoch"), "mode": master.get("mode"),
            "sealed": sum(s.get("sealed", 0) for s in both), "opened": sum(s.get("opened", 0) for s in both),
            "refused": dict(sum((Counter(s.get("refused", {})) for s in both), Counter()))})
    return {"kme": plan.kme_url, "kme_error": kme_error, "links": rows}
