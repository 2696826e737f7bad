"""Is someone on the line? Compare one block's measured statistics with the calibrated channel's.

The link is calibrated: its distance, fibre and detector parameters give the expected gain and QBER
of every intensity (LMC 2005) and the expected MQZL bound Y1^L. Each check is a test of the
block's counts against that expectation, with its threshold set a priori at Z = 5.5 binomial
standard deviations (one-sided tail 1.9e-8, two-sided 3.8e-8 in the normal approximation), so
that with the five checks below a block without Eve raises a false alarm with probability below
1.5e-7 (union bound). Nothing here is tuned on attack runs.

- ``qber>11%``: the signal QBER after Cascade is above 11 %, where BB84 with one-way
  post-processing yields no key (Shor and Preskill, PRL 85, 441 (2000)).
- ``qber-high``: the signal QBER is above the expected one by more than Z sigma
  (intercept-resend adds 25 % of errors on the intercepted share).
- ``signal-gain``: the signal gain is off the expected one by more than Z sigma (a changed channel,
  or an attack not tuned to hide).
- ``decoy-ratio``: Q_nu / Q_mu is off by more than Z sigma: PNS (Hwang 2003; LMC 2005) removes
  single photons, which weigh more in the weak decoy than in the signal.
- ``y1-low``: the MQZL lower bound Y1^L is below its expected value by more than Z sigma.
- ``no-key``: privacy amplification leaves no key although the calibrated channel gives one with
  a margin of Z standard deviations (of the key length's spread, dominated by the decoy QBER).
Every alarm is a short tag followed by the numbers that raised it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from links.qkd.keyrate import ExpectedStats
from links.qkd.params import binary_entropy

__all__ = ["ABORT_QBER", "Z_ALARM", "BlockStatistics", "check_block", "expected_key_bits"]

Z_ALARM = 5.5
ABORT_QBER = 0.11


@dataclass(frozen=True)
class BlockStatistics:
    """What one block measured, as the monitor needs it."""

    signal_pulses: int
    decoy_pulses: int
    vacuum_pulses: int
    signal_sifted: int
    decoy_sifted: int
    gain_signal: float
    gain_decoy: float
    qber: float
    y1_lower: float
    final_bits: int  # the key length privacy amplification allows (before any alarm)


def _binomial_sd(p: float, n: int) -> float:
    return math.sqrt(max(p * (1.0 - p), 0.0) / n) if n > 0 else math.inf


def expected_key_bits(expected: ExpectedStats, signal_pulses: int, f_ec: float, overhead_bits: float) -> float:
    """The key length the calibrated channel gives a block of this many signal pulses (MQZL bounds)."""
    sifted = signal_pulses * expected.signal.gain / 2.0
    single = sifted * expected.bounds.q1_lower / expected.signal.gain
    return (single * (1.0 - binary_entropy(expected.bounds.e1_upper))
            - f_ec * sifted * binary_entropy(expected.signal.qber) - overhead_bits)


def _key_bits_sd(expected: ExpectedStats, stats: BlockStatistics) -> float:
    """Spread of the key length, from the decoy QBER's (the bound e1^U is proportional to E_nu)."""
    e1 = expected.bounds.e1_upper
    e_nu = expected.decoy.qber
    if not 0.0 < e1 < 0.5 or e_nu <= 0.0:
        return math.inf
    sd_e1 = e1 * _binomial_sd(e_nu, stats.decoy_sifted) / e_nu
    single = stats.signal_pulses * expected.bounds.q1_lower / 2.0
    return single * math.log2((1.0 - e1) / e1) * sd_e1


def check_block(expected: ExpectedStats, mu: float, nu: float, stats: BlockStatistics, f_ec: float,
                overhead_bits: float) -> tuple[str, ...]:
    """The alarms this block raises against the calibrated expectation (empty: nothing seen)."""
    alarms: list[str] = []
    q_mu, q_nu, q_0 = expected.signal.gain, expected.decoy.gain, expected.vacuum.gain
    if stats.qber > ABORT_QBER:
        alarms.append(f"qber>11%: {stats.qber:.4f}")
    e_mu = expected.signal.qber
    qber_limit = e_mu + Z_ALARM * _binomial_sd(e_mu, stats.signal_sifted)
    if stats.qber > qber_limit:
        alarms.append(f"qber-high: {stats.qber:.4f} > {qber_limit:.4f} (expected {e_mu:.4f})")
    sd_mu = _binomial_sd(q_mu, stats.signal_pulses)
    if abs(stats.gain_signal - q_mu) > Z_ALARM * sd_mu:
        alarms.append(f"signal-gain: {stats.gain_signal:.3e} vs expected {q_mu:.3e} ± {Z_ALARM * sd_mu:.1e}")
    sd_nu = _binomial_sd(q_nu, stats.decoy_pulses)
    ratio = q_nu / q_mu
    measured_ratio = stats.gain_decoy / stats.gain_signal if stats.gain_signal > 0 else 0.0
    sd_ratio = ratio * math.sqrt((sd_nu / q_nu) ** 2 + (sd_mu / q_mu) ** 2)
    if abs(measured_ratio - ratio) > Z_ALARM * sd_ratio:
        alarms.append(f"decoy-ratio: Q_nu/Q_mu {measured_ratio:.4f} vs expected {ratio:.4f} "
                      f"± {Z_ALARM * sd_ratio:.4f}")
    # Y1^L = A (Q_nu e^nu - Q_mu e^mu nu^2/mu^2 - c Y0): the spread of a linear form of three gains.
    a = mu / (mu * nu - nu * nu)
    c = (mu * mu - nu * nu) / (mu * mu)
    sd_y1 = a * math.sqrt((math.exp(nu) * sd_nu) ** 2 + (math.exp(mu) * nu * nu / (mu * mu) * sd_mu) ** 2
                          + (c * _binomial_sd(q_0, stats.vacuum_pulses)) ** 2)
    y1_limit = expected.bounds.y1_lower - Z_ALARM * sd_y1
    if stats.y1_lower < y1_limit:
        alarms.append(f"y1-low: Y1^L {stats.y1_lower:.3e} < {y1_limit:.3e} (expected {expected.bounds.y1_lower:.3e})")
    if stats.final_bits <= 0:
        wanted = expected_key_bits(expected, stats.signal_pulses, f_ec, overhead_bits)
        if wanted > Z_ALARM * _key_bits_sd(expected, stats):
            alarms.append(f"no-key: expected {wanted:.0f} bits")
    return tuple(alarms)
