"""A QKD link that keeps making key blocks: what the KME's refill thread draws from."""

from __future__ import annotations

import threading

import numpy as np

from core.errors import ConfigError
from links.qkd.block import BlockResult, run_block
from links.qkd.params import DEFAULT_SOURCE, GYS, Eavesdropper, FibreParams, SourceSettings, check_distance

__all__ = ["DEFAULT_PULSES_PER_BLOCK", "QkdLink"]

# 2 x 10^7 pulses: ~11 000 final bits at 25 km (0.1 s), ~1 600 at 55 km (0.02 s) with GYS parameters.
DEFAULT_PULSES_PER_BLOCK = 20_000_000


class QkdLink:
    """One fibre between two sites, with its own random source; blocks are made one after another.

    Thread safety: `next_block` holds a lock for the block (the generator is not thread-safe), and
    reads the eavesdropper once at the start, so `set_eve` from another thread takes effect at the
    next block and never mid-block.
    """

    def __init__(self, distance_km: float, *, params: FibreParams = GYS,
                 source: SourceSettings = DEFAULT_SOURCE, seed: int | None = None,
                 pulses_per_block: int = DEFAULT_PULSES_PER_BLOCK) -> None:
        check_distance(distance_km)
        if isinstance(pulses_per_block, bool) or not isinstance(pulses_per_block, int) or pulses_per_block <= 0:
            raise ConfigError(f"pulses_per_block must be a positive whole number, not {pulses_per_block}")
        self.distance_km = distance_km
        self.params = params
        self.source = source
        self.pulses_per_block = pulses_per_block
        self._rng = np.random.default_rng(seed)
        self._block_lock = threading.Lock()
        self._eve_lock = threading.Lock()
        self._eve: Eavesdropper | None = None

    @property
    def eve(self) -> Eavesdropper | None:
        with self._eve_lock:
            return self._eve

    def set_eve(self, eve: Eavesdropper | None) -> None:
        with self._eve_lock:
            self._eve = eve

    def next_block(self) -> BlockResult:
        eve = self.eve
        with self._block_lock:
            return run_block(self.distance_km, self.pulses_per_block, params=self.params, source=self.source,
                             rng=self._rng, eve=eve)
