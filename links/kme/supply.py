"""The KME's side of each QKD link: the simulated pair runs block after block, like the hardware would.

A QKD pair does not wait to be asked: it keeps exchanging photons, and the statistics of every
block are what tells an eavesdropper apart from fibre. So each link runs a block at least every
`monitor_s` seconds (its key goes to the pool while the pool has room), sooner while the pool is
under `low_water_bytes`. A block whose statistics raise an alarm (`links.qkd`: the QBER, the
decoy yields) makes the link **compromised**: every key of the link not yet delivered to both ends
is discarded and no key is served until `clean_to_restore` clean blocks in a row have passed; then
it is **secure** again. While compromised the link runs blocks every `alarm_s` seconds, so that it
is restored soon after Eve leaves.

The monitoring blocks (a full pool, the round of every `monitor_s`) take the link whose last block
is oldest, and together use at most `monitor_duty` of one core: a whole city is ~36 links at about
0.1 s of simulation a block, which at one block per link every 3 s would be a core of its own.
With many links the round is therefore longer than `monitor_s` (about 12 s for six sectors);
refills and the blocks of compromised links are not throttled.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConfigError
from core.logs import log_line
from links.kme.store import KeyStore
from links.plan import LinkPlan
from links.qkd import BlockResult, Eavesdropper, QkdLink

__all__ = ["KeySupply", "LinkQkdState"]

PULSES_PER_BLOCK = 10_000_000  # ≈ 0.06 s of simulation: ≈ 5,000 final bits at 25 km, ≈ 900 at 55 km


def _finite(values: dict[str, object]) -> dict[str, object]:
    """NaN/inf (a block with nothing sifted) as None: JSON has no such numbers."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}


@dataclass
class LinkQkdState:
    """What the KME knows of one link's QKD pair: kept so the operators see why a link went dark."""

    link_id: str
    pair: QkdLink
    state: str = "secure"
    blocks: int = 0
    alarms: list[str] = field(default_factory=list)  # the alarms of the block that compromised the link
    alarm_count: int = 0  # blocks with an alarm since the KME started
    refused_blocks: int = 0  # blocks whose two copies disagreed (never expected: the pair verifies them)
    clean_streak: int = 0
    last: BlockResult | None = None
    last_at: float = 0.0
    changed_at: float = field(default_factory=time.time)


class KeySupply:
    """The refill thread and the links' secure/compromised state (module docstring)."""

    def __init__(self, plan: LinkPlan, store: KeyStore, *, seed: int | None = None, monitor_s: float = 3.0,
                 alarm_s: float = 0.5, low_water_bytes: int = 2048, clean_to_restore: int = 3,
                 monitor_duty: float = 0.25, pulses_per_block: int = PULSES_PER_BLOCK,
                 clock: Callable[[], float] = time.time) -> None:
        if not 0.0 < monitor_duty <= 1.0:
            raise ConfigError(f"monitor_duty is a fraction of one core, 0 < d <= 1, not {monitor_duty}")
        self.plan, self.store = plan, store
        self.monitor_s, self.alarm_s, self.low_water_bytes = monitor_s, alarm_s, low_water_bytes
        self.monitor_duty = monitor_duty
        self._monitor_free_at = 0.0
        self.clean_to_restore = clean_to_restore
        self._clock = clock
        self._lock = threading.Lock()
        self.links = {
            link.link_id: LinkQkdState(link.link_id, QkdLink(link.distance_km, pulses_per_block=pulses_per_block,
                                                             seed=None if seed is None else seed + i))
            for i, link in enumerate(plan.links)}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kme-qkd", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _urgent(self, link: LinkQkdState, now: float) -> bool:
        """A compromised link's next block (to restore it soon), or a pool under its low-water mark; a
        link whose last block made no key waits for the monitoring round instead of spinning."""
        if link.state == "compromised":
            return now - link.last_at >= self.alarm_s
        if self.store.available_bytes(link.link_id) >= self.low_water_bytes:
            return False
        return link.last is None or link.last.final_bits > 0 or now - link.last_at >= self.monitor_s

    def _run(self) -> None:
        while not self._stop.is_set():
            ran = 0
            for link in list(self.links.values()):
                if self._stop.is_set():
                    return
                if self._urgent(link, self._clock()):
                    self._block(link)
                    ran += 1
            now = self._clock()
            if not ran and now >= self._monitor_free_at:
                stale = min(self.links.values(), key=lambda link: link.last_at, default=None)
                if stale is not None and now - stale.last_at >= self.monitor_s:
                    took = self._block(stale)
                    self._monitor_free_at = self._clock() + took * (1.0 / self.monitor_duty - 1.0)
                    ran += 1
            if not ran:
                self._stop.wait(0.05)

    def _block(self, link: LinkQkdState) -> float:
        """Run one block on `link`; returns the seconds it took. A failure is logged, never raised: one
        link's trouble must not stop the other links' keys."""
        started = time.perf_counter()
        try:
            self.run_block(link.link_id)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log_line("qeaims.kme", "qkd-block-failed", link=link.link_id, error=str(exc))
            link.last_at = self._clock()
        return time.perf_counter() - started

    def run_block(self, link_id: str) -> BlockResult:
        """One block on one link, and what its statistics mean for the link (module docstring)."""
        link = self.links[link_id]
        block = link.pair.next_block()
        with self._lock:
            link.blocks += 1
            link.last, link.last_at = block, self._clock()
            if block.attack_detected:
                link.clean_streak = 0
                link.alarm_count += 1
                link.alarms = list(block.alarms)
                if link.state != "compromised":
                    link.state, link.changed_at = "compromised", self._clock()
                    gone = self.store.discard(link_id)
                    log_line("qeaims.kme", "qkd-link-compromised", link=link_id, alarms=link.alarms,
                             qber=round(block.qber, 5), discarded_bytes=gone)
                return block
            if link.state == "compromised":
                link.clean_streak += 1
                if link.clean_streak < self.clean_to_restore:
                    return block  # clean, but not yet trusted again: its key is not served
                link.state, link.changed_at, link.alarms = "secure", self._clock(), []
                log_line("qeaims.kme", "qkd-link-restored", link=link_id, qber=round(block.qber, 5))
        if block.final_bits and not block.aborted:
            try:
                self.store.add(link_id, block.key_alice, block.key_bob)
            except ConfigError as exc:
                with self._lock:
                    link.refused_blocks += 1
                log_line("qeaims.kme", "qkd-block-refused", link=link_id, error=str(exc))
        return block

    def set_eavesdropper(self, link_id: str, eve: Eavesdropper | None) -> None:
        self.links[link_id].pair.set_eve(eve)
        log_line("qeaims.kme", "eavesdropper-set" if eve else "eavesdropper-cleared", link=link_id,
                 kind=eve.kind if eve else None, fraction=eve.fraction if eve else None)

    def state_of(self, link_id: str) -> dict[str, Any]:
        with self._lock:
            link = self.links[link_id]
            eve = link.pair.eve
            return {"state": link.state, "blocks": link.blocks, "alarms": list(link.alarms),
                    "alarm_count": link.alarm_count, "refused_blocks": link.refused_blocks,
                    "last_block": _finite(link.last.summary()) if link.last is not None else None,
                    "changed_at": link.changed_at,
                    "eavesdropper": {"kind": eve.kind, "fraction": eve.fraction} if eve is not None else None}

    def compromised(self, link_id: str) -> bool:
        with self._lock:
            return self.links[link_id].state == "compromised"
