"""The analytic key rates against references derived here from the published formulas.

The reference is computed independently of `links.qkd.keyrate`: LMC 2005 Eqs. (1)-(5) written out
again and maximised over mu by brute force on a fine grid (not the production optimiser), and the
maximum distance of LMC 2005 (about 142 km for GYS with infinitely many decoys, their Fig. 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import ConfigError
from links.qkd import FibreParams, SourceSettings, asymptotic_rate, expected_stats, max_distance_km
from links.qkd.estimate import vacuum_weak_bounds
from links.qkd.keyrate import optimal_mu, vacuum_weak_rate

DISTANCES = (0, 25, 50, 75, 100, 125, 140)
LMC_MAX_DISTANCE_KM = 142.0  # LMC 2005, Fig. 1 (GYS, infinite decoys)


def _h2(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 1e-300, 1 - 1e-16)
    entropy: np.ndarray = -x * np.log2(x) - (1 - x) * np.log2(1 - x)
    return entropy


def reference_rate(distance_km: float) -> float:
    """LMC 2005 with GYS, best over a grid of 20 000 intensities in (0, 1.5]."""
    alpha, eta_bob, y0, e_det, f, e0 = 0.21, 0.045, 1.7e-6, 0.033, 1.22, 0.5
    eta = 10 ** (-alpha * distance_km / 10) * eta_bob
    mu = np.linspace(1.5 / 20_000, 1.5, 20_000)
    q_mu = y0 + 1 - np.exp(-eta * mu)
    e_mu = (e0 * y0 + e_det * (1 - np.exp(-eta * mu))) / q_mu
    y1 = y0 + eta
    e1 = (e0 * y0 + e_det * eta) / y1
    q1 = y1 * mu * np.exp(-mu)
    rate = 0.5 * (-q_mu * f * _h2(e_mu) + q1 * (1 - _h2(np.full_like(mu, e1))))
    return float(rate.max())


@pytest.mark.parametrize("distance", DISTANCES)
def test_rate_matches_the_published_formula_within_5_percent(distance: float) -> None:
    reference = reference_rate(distance)
    assert reference > 0
    assert asymptotic_rate(distance) == pytest.approx(reference, rel=0.05)
    assert asymptotic_rate(distance) >= reference * (1 - 1e-9)  # the optimiser finds at least the grid's best


def test_max_distance_is_lmc_142_km() -> None:
    found = max_distance_km()
    assert abs(found - LMC_MAX_DISTANCE_KM) <= 2.0
    assert asymptotic_rate(found - 0.5) > 0 > asymptotic_rate(found + 0.5)
    # and where the grid reference changes sign
    grid = np.arange(138.0, 146.0, 0.05)
    signs = [reference_rate(d) > 0 for d in grid]
    assert abs(grid[signs.index(False)] - found) <= 0.1


def test_optimal_mu_near_half_and_a_fixed_mu_is_used() -> None:
    for distance in DISTANCES:
        assert 0.4 < optimal_mu(distance) < 0.5
    assert asymptotic_rate(25, mu=0.2) < asymptotic_rate(25)


def test_expected_stats_and_the_mqzl_bound() -> None:
    stats = expected_stats(25.0)
    eta = 10 ** (-0.21 * 2.5) * 0.045
    assert stats.transmittance == pytest.approx(eta)
    assert stats.signal.gain == pytest.approx(1.7e-6 + 1 - math.exp(-0.5 * eta))
    assert stats.vacuum.gain == pytest.approx(1.7e-6) and stats.vacuum.qber == 0.5
    # the vacuum+weak bound is a lower bound on the true Y1, tight within a few % for nu = 0.1
    assert 0.95 * stats.y1 < stats.bounds.y1_lower <= stats.y1
    assert stats.e1 <= stats.bounds.e1_upper < 1.2 * stats.e1
    # written out from MQZL 2005 Eq. (34)
    mu, nu = 0.5, 0.1
    y1l = mu / (mu * nu - nu**2) * (stats.decoy.gain * math.exp(nu) - stats.signal.gain * math.exp(mu) * nu**2 / mu**2
                                   - (mu**2 - nu**2) / mu**2 * 1.7e-6)
    assert stats.bounds.y1_lower == pytest.approx(y1l)
    assert 0 < vacuum_weak_rate(25.0) < asymptotic_rate(25.0, mu=0.5)


def test_bounds_collapse_to_no_key() -> None:
    bound = vacuum_weak_bounds(mu=0.5, nu=0.1, q_mu=0.01, q_nu=0.0, y0=0.0, e_nu=0.0)
    assert bound.y1_lower == 0 and bound.e1_upper == 0.5


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        FibreParams(eta_bob=0)
    with pytest.raises(ConfigError):
        SourceSettings(mu=0.1, nu=0.5)
    with pytest.raises(ConfigError):
        SourceSettings(p_mu=0.9)
    with pytest.raises(ConfigError):
        expected_stats(-1.0)
