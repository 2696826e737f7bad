"""Decoy-state estimation: a lower bound on the single-photon yield and an upper bound on its error rate.

The vacuum + weak decoy method of Ma, Qi, Zhao and Lo, PRA 72, 012326 (2005), Eqs. (34) and (37):

    Y1 >= Y1^L = mu / (mu nu - nu^2) * (Q_nu e^nu - Q_mu e^mu nu^2/mu^2 - (mu^2 - nu^2)/mu^2 * Y0)
    e1 <= e1^U = (E_nu Q_nu e^nu - e0 Y0) / (Y1^L nu)
    Q1^L = Y1^L mu e^-mu

The same formulas serve the analytic expectation (fed the expected gains) and the block (fed the
gains Bob and Alice measured), so the simulation reproduces the analytic figure on average. The
measured gains are plugged in as they are (the asymptotic form); statistical fluctuations are
watched by the monitor, not folded into the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DecoyEstimate", "vacuum_weak_bounds"]


@dataclass(frozen=True)
class DecoyEstimate:
    y1_lower: float
    e1_upper: float
    q1_lower: float  # the gain of single-photon signal pulses, Y1^L mu e^-mu


def vacuum_weak_bounds(*, mu: float, nu: float, q_mu: float, q_nu: float, y0: float, e_nu: float,
                       e0: float = 0.5) -> DecoyEstimate:
    """Y1^L, e1^U and Q1^L from the signal, weak-decoy and vacuum gains (MQZL 2005, Eqs. 34, 37).

    Y1^L is clipped at 0 and e1^U to [0, 1/2]: a negative yield or an error above 1/2 means no
    single-photon key can be proved, which the key length then shows as zero.
    """
    y1 = mu / (mu * nu - nu * nu) * (q_nu * math.exp(nu) - q_mu * math.exp(mu) * nu * nu / (mu * mu)
                                     - (mu * mu - nu * nu) / (mu * mu) * y0)
    y1 = max(y1, 0.0)
    if y1 <= 0.0:
        return DecoyEstimate(0.0, 0.5, 0.0)
    e1 = (e_nu * q_nu * math.exp(nu) - e0 * y0) / (y1 * nu)
    e1 = min(max(e1, 0.0), 0.5)
    return DecoyEstimate(y1, e1, y1 * mu * math.exp(-mu))
