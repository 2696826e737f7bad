"""The analytic key rates: the infinite-decoy limit of Lo, Ma and Chen 2005 and the vacuum+weak bound.

Lo, Ma and Chen, PRL 94, 230504 (2005), Eqs. (1)-(5) with the GLLP rate (Gottesman, Lo, Lütkenhaus
and Preskill, QIC 4, 325 (2004)):

    R   = q { -Q_mu f H2(E_mu) + Q_1 [1 - H2(e_1)] },  q = 1/2 (BB84 sifting)
    Q_mu = Y0 + 1 - exp(-eta mu),            E_mu Q_mu = e0 Y0 + e_det (1 - exp(-eta mu))
    Y_1 = Y0 + eta,   e_1 = (e0 Y0 + e_det eta) / Y_1,   Q_1 = Y_1 mu e^-mu

With infinitely many decoys Alice and Bob learn Y_1 and e_1 exactly; the rate is optimised over
mu at each distance (bounded scalar search; the optimum is ~0.43-0.49 for GYS) and vanishes at
~142 km (LMC 2005, Fig. 1). `vacuum_weak_rate` puts the bounds Y1^L, e1^U of Ma, Qi, Zhao and
Lo 2005 (evaluated on the expected gains of the three intensities) in place of Y_1, e_1: the figure
one block of the pulse simulation should reproduce on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import optimize

from links.qkd.estimate import DecoyEstimate, vacuum_weak_bounds
from links.qkd.params import DEFAULT_SOURCE, GYS, FibreParams, SourceSettings, binary_entropy, check_distance

__all__ = [
    "ExpectedStats",
    "IntensityStats",
    "asymptotic_rate",
    "expected_stats",
    "max_distance_km",
    "optimal_mu",
    "vacuum_weak_rate",
]

SIFTING = 0.5  # q: Alice and Bob pick the same of two bases half of the time
MU_BOUNDS = (1e-3, 1.5)


@dataclass(frozen=True)
class IntensityStats:
    """Expected gain Q (detections per pulse) and QBER E of pulses of one intensity (LMC Eqs. 2-3)."""

    intensity: float
    gain: float
    qber: float


def _gain_and_qber(intensity: float, eta: float, params: FibreParams) -> IntensityStats:
    signal = 1.0 - math.exp(-eta * intensity)
    gain = params.y0 + signal
    errors = params.e0 * params.y0 + params.e_det * signal
    return IntensityStats(intensity, gain, errors / gain if gain > 0 else 0.0)


def _rate_at(mu: float, eta: float, params: FibreParams) -> float:
    stats = _gain_and_qber(mu, eta, params)
    y1 = params.y0 + eta
    e1 = (params.e0 * params.y0 + params.e_det * eta) / y1
    q1 = y1 * mu * math.exp(-mu)
    return SIFTING * (-stats.gain * params.f_ec * binary_entropy(stats.qber) + q1 * (1.0 - binary_entropy(e1)))


def optimal_mu(distance_km: float, params: FibreParams = GYS) -> float:
    """The signal intensity that maximises the infinite-decoy rate at this distance."""
    eta = params.transmittance(distance_km)
    found = optimize.minimize_scalar(lambda mu: -_rate_at(float(mu), eta, params), bounds=MU_BOUNDS,
                                     method="bounded", options={"xatol": 1e-6})
    return float(found.x)


def asymptotic_rate(distance_km: float, params: FibreParams = GYS, mu: float | None = None) -> float:
    """LMC 2005 key rate in bits per pulse (may be negative beyond the cut-off); mu optimised if None."""
    eta = params.transmittance(distance_km)
    chosen = optimal_mu(distance_km, params) if mu is None else mu
    return _rate_at(chosen, eta, params)


def max_distance_km(params: FibreParams = GYS) -> float:
    """The distance where the optimised infinite-decoy rate reaches 0 (Brent's root finding).

    The optimised rate falls monotonically with distance, so the root is bracketed between 0 km
    (where the rate must be positive, else 0 is returned) and a distance where it is negative.
    """
    def rate(distance: float) -> float:
        return asymptotic_rate(distance, params)

    if rate(0.0) <= 0.0:
        return 0.0
    high = 50.0
    while rate(high) > 0.0:
        high *= 2.0
        if high > 1e5:
            return math.inf
    return float(optimize.brentq(rate, 0.0, high, xtol=1e-4))


@dataclass(frozen=True)
class ExpectedStats:
    """What a calibrated link expects at one distance: gains and QBERs of each intensity, the true
    single-photon yield and error, and the MQZL bounds computed from the expected gains."""

    distance_km: float
    transmittance: float
    signal: IntensityStats
    decoy: IntensityStats
    vacuum: IntensityStats
    y1: float
    e1: float
    bounds: DecoyEstimate


def expected_stats(distance_km: float, params: FibreParams = GYS,
                   source: SourceSettings = DEFAULT_SOURCE) -> ExpectedStats:
    """Expected gains and QBERs of the signal, weak decoy and vacuum (LMC Eqs. 2-3), and Y1^L, e1^U."""
    check_distance(distance_km)
    eta = params.transmittance(distance_km)
    signal = _gain_and_qber(source.mu, eta, params)
    decoy = _gain_and_qber(source.nu, eta, params)
    vacuum = _gain_and_qber(0.0, eta, params)
    y1 = params.y0 + eta
    bounds = vacuum_weak_bounds(mu=source.mu, nu=source.nu, q_mu=signal.gain, q_nu=decoy.gain, y0=vacuum.gain,
                                e_nu=decoy.qber, e0=params.e0)
    return ExpectedStats(distance_km, eta, signal, decoy, vacuum, y1, (params.e0 * params.y0 + params.e_det * eta) / y1,
                         bounds)


def vacuum_weak_rate(distance_km: float, params: FibreParams = GYS,
                     source: SourceSettings = DEFAULT_SOURCE, f_ec: float | None = None) -> float:
    """Key bits per SIGNAL pulse with the vacuum+weak bounds (MQZL 2005): q{-Q_mu f H2(E_mu) + Q1^L[1-H2(e1^U)]}."""
    stats = expected_stats(distance_km, params, source)
    f = params.f_ec if f_ec is None else f_ec
    return SIFTING * (-stats.signal.gain * f * binary_entropy(stats.signal.qber)
                      + stats.bounds.q1_lower * (1.0 - binary_entropy(stats.bounds.e1_upper)))
