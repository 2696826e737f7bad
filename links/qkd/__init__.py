"""Decoy-state BB84 over fibre, simulated from the physics, and its analytic key rate.

Modules, one job each (imports flow downward):

- :mod:`links.qkd.params` — the fibre and detector (GYS values of Lo, Ma and Chen 2005), the source
  (signal, weak decoy, vacuum) and an eavesdropper (intercept-resend, photon-number splitting).
- :mod:`links.qkd.estimate` — the vacuum+weak decoy bounds Y1^L, e1^U (Ma, Qi, Zhao and Lo 2005).
- :mod:`links.qkd.keyrate` — the analytic rates: LMC's infinite-decoy limit, its maximum distance,
  the vacuum+weak rate and the expected gains and QBERs of every intensity.
- :mod:`links.qkd.simulate` — one block of pulses, sampled exactly in distribution by thinning.
- :mod:`links.qkd.cascade` — Cascade error correction over a counted parity channel.
- :mod:`links.qkd.amplify` — Toeplitz hashing (FFT): verification tags and privacy amplification.
- :mod:`links.qkd.monitor` — alarms from the block's statistics against the calibrated channel.
- :mod:`links.qkd.block` — one block end to end (`run_block`, `BlockResult`).
- :mod:`links.qkd.link` — `QkdLink`, a link that makes block after block for the KME.
"""

from links.qkd.block import BlockResult, run_block
from links.qkd.keyrate import (
    ExpectedStats,
    asymptotic_rate,
    expected_stats,
    max_distance_km,
    vacuum_weak_rate,
)
from links.qkd.link import QkdLink
from links.qkd.params import Eavesdropper, FibreParams, SourceSettings

__all__ = [
    "BlockResult",
    "Eavesdropper",
    "ExpectedStats",
    "FibreParams",
    "QkdLink",
    "SourceSettings",
    "asymptotic_rate",
    "expected_stats",
    "max_distance_km",
    "run_block",
    "vacuum_weak_rate",
]
