"""`qeaims scenario run eavesdropper`: an eavesdropper on one QKD link of the running city, start to end.

What it plays, against a city started by `qeaims up` (secure links on):

1. Eve taps the fibre of one link (default: the water field gateway to its first oracle) with an
   intercept-resend attack on a fraction of the pulses (the KME's simulation control, as the
   ``operations`` SAE; nothing else is told).
2. The QKD pair's own statistics give her away: the KME marks the link compromised and discards
   its keys; the controller records a ``link-compromised`` alarm on-chain; the link's master moves
   the channel to ML-KEM-768 ⊕ X25519 (a ``pq-fallback`` session, recorded as a key rotation).
   Readings keep flowing to the oracle throughout: the scenario checks the oracle's count of
   opened envelopes grows while Eve listens.
3. Eve leaves; after clean blocks the link is secure again, ``link-restored`` is recorded and the
   next session is hybrid again.

The report gives the time of each step from the moment Eve started (wall seconds: the QKD blocks
and the chain run in real time, not at the twins' speed) and ends with an audit of the chain.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chain.client import ChainClient
from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.manifest import Deployment
from controller.link_watch import KEY_ROTATION, QKD_ALARM
from core.config import Settings
from core.errors import ConfigError, QeaimsError
from links.files import LinkFiles
from links.kme.client import KmeClient
from links.pki import DevPki
from links.plan import OPERATIONS_SAE, LinkPlan, link_id_for, oracle_sae, twin_sae
from links.site import read_status

__all__ = ["EavesdropperRun", "default_link"]



def default_link(plan: LinkPlan) -> str:
    """The water gateway's link to its first oracle, or the plan's first gateway-to-oracle link."""
    preferred = link_id_for(twin_sae("water"), oracle_sae("water", 1))
    ids = [link.link_id for link in plan.links]
    if preferred in ids:
        return preferred
    for link in plan.links:
        if link.slave.startswith("oracle-"):
            return link.link_id
    raise ConfigError("the link plan has no gateway-to-oracle link to tap")


@dataclass
class EavesdropperRun:
    settings: Settings
    client: ChainClient
    deployment: Deployment
    link_id: str
    kind: str = "intercept-resend"
    fraction: float = 0.2
    timeline: dict[str, float | None] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    opened_during_attack: int = 0

    def __post_init__(self) -> None:
        self.files = LinkFiles.of(self.settings.home)
        if not self.files.enabled:
            raise ConfigError("the city runs plaintext links: start it with `qeaims up` (secure links are the default)")
        self.plan = LinkPlan.load(self.files.plan)
        self.link = self.plan.get(self.link_id)
        self.kme = KmeClient(self.plan.kme_url, OPERATIONS_SAE, DevPki(self.files.pki))
        base = self.settings.home / "scenarios" / self.deployment.deployment_id
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.index = Indexer(base / "index.sqlite", self.client.rpc, self.deployment, contract_abis(),
                             max_logs_range=self.settings.max_logs_range)
        self._from_block = 0
        self._start = 0.0

    def close(self) -> None:
        self.index.close()
        self.kme.close()

    def _since(self) -> float:
        return round(time.monotonic() - self._start, 3)

    def _state(self) -> str:
        for state in self.kme.links():
            if state.link_id == self.link_id:
                return str(state.state)
        raise ConfigError(f"the KME does not know link {self.link_id}")

    def _chain_events(self) -> list[dict[str, Any]]:
        self.index.sync()
        rows = self.index.db.execute(
            "SELECT kind, payload, block FROM events WHERE block >= ? AND kind IN (?, ?) ORDER BY block, log_index",
            (self._from_block, KEY_ROTATION, QKD_ALARM)).fetchall()
        out = []
        for kind, payload, block in rows:
            try:
                body = json.loads(bytes(payload))
            except ValueError:
                continue
            if isinstance(body, dict) and body.get("link") == self.link_id:
                out.append({"kind": "key-rotation" if kind == KEY_ROTATION else "qkd-alarm", "block": block, **body})
        return out

    def _opened(self) -> int:
        status = read_status(self.files).get(self.link.slave, {})
        return int(((status.get("links") or {}).get(self.link_id) or {}).get("stats", {}).get("opened", 0))

    def _wait(self, what: str, test: Callable[[], bool], timeout_s: float, progress: Callable[[str], None]) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if test():
                self.timeline[what] = self._since()
                progress(f"{what} after {self.timeline[what]:.1f} s")
                return
            time.sleep(0.5)
        self.timeline[what] = None
        progress(f"{what}: not within {timeout_s:g} s")

    def _has(self, kind: str, **match: Any) -> bool:
        self.events = self._chain_events()
        return any(e["kind"] == kind and all(e.get(k) == v for k, v in match.items()) for e in self.events)

    def play(self, *, timeout_s: float = 120.0, dwell_s: float = 10.0,
             progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
        self.index.sync()
        self._from_block = int(self.index.db.execute("SELECT COALESCE(MAX(block), 0) FROM logs").fetchone()[0]) + 1
        if self._state() != "secure":
            raise QeaimsError(f"link {self.link_id} is not secure before the scenario starts: wait, or pick another")
        opened_before = self._opened()
        self._start = time.monotonic()
        self.kme.set_eavesdropper(self.link_id, self.kind, self.fraction)
        progress(f"Eve taps {self.link_id}: {self.kind} on {self.fraction:.0%} of the pulses")
        try:
            self._wait("kme_compromised", lambda: self._state() == "compromised", timeout_s, progress)
            self._wait("alarm_on_chain", lambda: self._has("qkd-alarm", type="link-compromised"), timeout_s, progress)
            self._wait("fallback_on_chain", lambda: self._has("key-rotation", mode="pq-fallback"), timeout_s, progress)
            time.sleep(dwell_s)  # Eve keeps listening; the readings must keep flowing (post-quantum channel)
            self.opened_during_attack = self._opened() - opened_before
        finally:
            self.kme.clear_eavesdropper(self.link_id)
        self.timeline["eve_left"] = self._since()
        progress("Eve leaves the fibre")
        self._wait("kme_secure", lambda: self._state() == "secure", timeout_s, progress)
        self._wait("restored_on_chain", lambda: self._has("qkd-alarm", type="link-restored"), timeout_s, progress)
        fallback = max((int(e.get("epoch", 0)) for e in self.events
                        if e["kind"] == "key-rotation" and e.get("mode") == "pq-fallback"), default=0)
        self._wait("hybrid_on_chain", lambda: self._has_hybrid_after(fallback), timeout_s, progress)
        return self.report()

    def _has_hybrid_after(self, epoch: int) -> bool:
        """A hybrid session newer than the fallback one (whether the master saw the link secure
        before or after the controller recorded link-restored)."""
        self.events = self._chain_events()
        return any(e["kind"] == "key-rotation" and e.get("mode") == "hybrid" and int(e.get("epoch", 0)) > epoch
                   for e in self.events)

    def report(self) -> dict[str, Any]:
        steps = ("kme_compromised", "alarm_on_chain", "fallback_on_chain", "kme_secure", "restored_on_chain",
                 "hybrid_on_chain")
        return {"scenario": "eavesdropper", "link": self.link_id, "attack": {"kind": self.kind,
                                                                            "fraction": self.fraction},
                "timeline_s": self.timeline, "complete": all(self.timeline.get(s) is not None for s in steps),
                "readings_opened_during_attack": self.opened_during_attack,
                "events": [{k: v for k, v in e.items() if k in ("kind", "type", "block", "epoch", "mode", "alarms",
                                                                 "key_ids", "response")} for e in self.events]}
