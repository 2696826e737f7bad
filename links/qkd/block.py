"""One key block end to end: pulses, sifting, Cascade, verification, decoy estimation, privacy amplification.

The steps, and what each discloses on the public channel:

1. `simulate_pulses`: N pulses; Bob announces which pulses he detected and his bases, Alice hers and
   each pulse's intensity class; both keep the matching-basis events (sifting, q = 1/2).
2. Decoy and vacuum bits are disclosed entirely: their gains Q_nu, Q_0 and QBER E_nu are measured.
3. Cascade on the signal bits, with k_1 from the decoy QBER (an honest estimate of the signal's:
   same channel, same detector); the parities are counted as leak_EC.
4. Error verification: a 64-bit Toeplitz tag of Alice's key and of Bob's corrected key (a fresh
   public seed); a mismatch aborts the block. The signal QBER is then the count of corrected errors.
5. Decoy estimation (MQZL 2005): Y1^L, e1^U from the measured Q_mu, Q_nu, Q_0 and E_nu;
   n_1^L = n_sifted Q1^L / Q_mu single-photon sifted bits.
6. Key length (GLLP with decoys; finite-key margin of the leftover hash lemma):
   l = floor(n_1^L (1 - H2(e1^U)) - leak_EC - tag_bits - 2 log2(1/eps_PA)), cut to whole bytes.
7. The monitor's checks; a block with an alarm (or none of the above possible) is discarded.
8. Privacy amplification: both ends hash with the same public random Toeplitz matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from links.qkd.amplify import TAG_BITS, pack_bits, toeplitz_hash, verification_tag
from links.qkd.cascade import ParityChannel, cascade_correct
from links.qkd.estimate import vacuum_weak_bounds
from links.qkd.keyrate import expected_stats
from links.qkd.monitor import ABORT_QBER, BlockStatistics, check_block
from links.qkd.params import (
    DEFAULT_SOURCE,
    GYS,
    Eavesdropper,
    FibreParams,
    SourceSettings,
    binary_entropy,
    check_distance,
)
from links.qkd.simulate import simulate_pulses

__all__ = ["EPS_PA", "PA_MARGIN_BITS", "BlockResult", "run_block"]

EPS_PA = 1e-10
PA_MARGIN_BITS = 2.0 * math.log2(1.0 / EPS_PA)  # leftover hash lemma: Eve's advantage <= eps_PA
MIN_DECOY_BITS_FOR_ESTIMATE = 100


@dataclass(frozen=True)
class BlockResult:
    """What one block made and measured. `key_alice` == `key_bob` whenever `aborted` is ""."""

    pulses: int
    distance_km: float
    sifted_bits: int  # sifted signal bits (the ones that become key)
    qber: float  # signal QBER, counted by Cascade
    gain_signal: float
    gain_decoy: float
    gain_vacuum: float
    qber_decoy: float
    y1_lower: float
    e1_upper: float
    ec_leaked_bits: int
    ec_efficiency: float
    final_bits: int
    secure_rate: float  # final bits per pulse sent
    key_alice: bytes
    key_bob: bytes
    attack_detected: bool
    alarms: tuple[str, ...]
    aborted: str

    def summary(self) -> dict[str, object]:
        """Everything but the keys, JSON-able."""
        return {
            "pulses": self.pulses, "distance_km": self.distance_km, "sifted_bits": self.sifted_bits,
            "qber": self.qber, "gain_signal": self.gain_signal, "gain_decoy": self.gain_decoy,
            "gain_vacuum": self.gain_vacuum, "qber_decoy": self.qber_decoy, "y1_lower": self.y1_lower,
            "e1_upper": self.e1_upper, "ec_leaked_bits": self.ec_leaked_bits, "ec_efficiency": self.ec_efficiency,
            "final_bits": self.final_bits, "secure_rate": self.secure_rate, "attack_detected": self.attack_detected,
            "alarms": list(self.alarms), "aborted": self.aborted,
        }


def _bits(rng: np.random.Generator, n: int) -> np.typing.NDArray[np.uint8]:
    return rng.integers(0, 2, n, dtype=np.uint8)


def run_block(distance_km: float, pulses: int, *, params: FibreParams = GYS,
              source: SourceSettings = DEFAULT_SOURCE, rng: np.random.Generator,
              eve: Eavesdropper | None = None) -> BlockResult:
    """Simulate one block of `pulses` pulses at `distance_km` and post-process it into a key (or not)."""
    from core.errors import ConfigError

    check_distance(distance_km)
    if isinstance(pulses, bool) or not isinstance(pulses, int) or pulses <= 0:
        raise ConfigError(f"a block needs a positive whole number of pulses, not {pulses}")
    expected = expected_stats(distance_km, params, source)
    record = simulate_pulses(distance_km, pulses, params=params, source=source, rng=rng, eve=eve)
    signal, decoy, vacuum = record.signal, record.decoy, record.vacuum
    q_mu, q_nu, q_0, e_nu = signal.gain, decoy.gain, vacuum.gain, decoy.qber
    n = len(signal.alice_bits)

    qber_guess = e_nu if len(decoy.alice_bits) >= MIN_DECOY_BITS_FOR_ESTIMATE else expected.signal.qber
    corrected = cascade_correct(ParityChannel(signal.alice_bits), signal.bob_bits, qber_guess, rng)
    tag_seed = _bits(rng, n + TAG_BITS - 1)
    verified = n > 0 and bool(np.array_equal(verification_tag(signal.alice_bits, tag_seed),
                                             verification_tag(corrected.corrected, tag_seed)))
    qber = corrected.qber
    estimate = vacuum_weak_bounds(mu=source.mu, nu=source.nu, q_mu=q_mu, q_nu=q_nu, y0=q_0, e_nu=e_nu, e0=params.e0)
    single_photon_bits = n * estimate.q1_lower / q_mu if q_mu > 0 else 0.0
    overhead = TAG_BITS + PA_MARGIN_BITS
    length = math.floor(single_photon_bits * (1.0 - binary_entropy(estimate.e1_upper))
                        - corrected.leaked_bits - overhead)
    length = max(length, 0) // 8 * 8
    if qber > ABORT_QBER:
        length = 0
    stats = BlockStatistics(signal.pulses, decoy.pulses, vacuum.pulses, n, len(decoy.alice_bits), q_mu, q_nu,
                            qber, estimate.y1_lower, length)
    alarms = check_block(expected, source.mu, source.nu, stats, params.f_ec, overhead)

    aborted = ""
    if n == 0:
        aborted = "no sifted bits"
    elif not verified:
        aborted = "error verification failed (Cascade left errors)"
    elif alarms:
        aborted = "alarm: " + alarms[0].split(":")[0]
    elif length <= 0:
        aborted = "no secure key (privacy amplification leaves 0 bits)"
    key_alice = key_bob = b""
    if not aborted:
        seed = _bits(rng, n + length - 1)
        final_alice = toeplitz_hash(signal.alice_bits, seed, length)
        final_bob = toeplitz_hash(corrected.corrected, seed, length)
        key_alice, key_bob = pack_bits(final_alice), pack_bits(final_bob)
        if key_alice != key_bob:  # only if the 64-bit tag collided
            aborted, key_alice, key_bob = "final keys differ", b"", b""
    final_bits = 0 if aborted else length
    return BlockResult(
        pulses=pulses, distance_km=distance_km, sifted_bits=n, qber=qber, gain_signal=q_mu, gain_decoy=q_nu,
        gain_vacuum=q_0, qber_decoy=e_nu, y1_lower=estimate.y1_lower, e1_upper=estimate.e1_upper,
        ec_leaked_bits=corrected.leaked_bits, ec_efficiency=corrected.efficiency, final_bits=final_bits,
        secure_rate=final_bits / pulses, key_alice=key_alice, key_bob=key_bob, attack_detected=bool(alarms),
        alarms=alarms, aborted=aborted,
    )
