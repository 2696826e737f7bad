"""The fixed inputs of a decoy-state BB84 link: the fibre and detector, the source, and an eavesdropper.

Defaults are the GYS experiment (Gobby, Yuan and Shields, APL 84, 3762 (2004)) as used by Lo, Ma and
Chen, "Decoy state quantum key distribution", PRL 94, 230504 (2005), Table/Fig. 1: fibre loss
0.21 dB/km, Bob's detection efficiency (detector and optics) 4.5 %, dark-count yield 1.7e-6 per
pulse, intrinsic (misalignment) error 3.3 %, error-correction inefficiency f = 1.22.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from core.errors import ConfigError

__all__ = ["DEFAULT_SOURCE", "EVE_KINDS", "GYS", "Eavesdropper", "EveKind", "FibreParams", "SourceSettings", "binary_entropy"]

EveKind = Literal["intercept-resend", "pns"]
EVE_KINDS: tuple[EveKind, ...] = ("intercept-resend", "pns")


def binary_entropy(x: float) -> float:
    """H2(x) = -x log2 x - (1-x) log2 (1-x); 0 at 0 and 1, and H2(x) = 1 beyond 1/2 is NOT applied."""
    if x <= 0.0 or x >= 1.0:
        return 0.0
    return -x * math.log2(x) - (1.0 - x) * math.log2(1.0 - x)


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {value}")


@dataclass(frozen=True)
class FibreParams:
    """The channel and Bob's detector, GYS values (LMC 2005).

    alpha_db_per_km: fibre loss; eta_bob: detector efficiency times Bob's optics transmission;
    y0: probability of a dark (or background) count per pulse; e_det: probability a photon hits the
    wrong detector (misalignment); f_ec: error-correction inefficiency assumed by the analytic rate;
    e0: the error rate of a dark count (a random bit, 1/2).
    """

    alpha_db_per_km: float = 0.21
    eta_bob: float = 0.045
    y0: float = 1.7e-6
    e_det: float = 0.033
    f_ec: float = 1.22
    e0: float = 0.5

    def __post_init__(self) -> None:
        for name in ("alpha_db_per_km", "eta_bob", "y0", "e_det", "f_ec", "e0"):
            _finite(name, getattr(self, name))
        if self.alpha_db_per_km < 0:
            raise ConfigError(f"fibre loss alpha must be >= 0 dB/km, not {self.alpha_db_per_km}")
        if not 0.0 < self.eta_bob <= 1.0:
            raise ConfigError(f"Bob's detection efficiency eta_bob must be in (0, 1], not {self.eta_bob}")
        if not 0.0 <= self.y0 < 1.0:
            raise ConfigError(f"the dark-count yield y0 must be in [0, 1), not {self.y0}")
        if not 0.0 <= self.e_det < 0.5:
            raise ConfigError(f"the misalignment error e_det must be in [0, 0.5), not {self.e_det}")
        if self.f_ec < 1.0:
            raise ConfigError(f"the error-correction inefficiency f_ec must be >= 1 (Shannon limit), not {self.f_ec}")
        if not 0.0 <= self.e0 <= 1.0:
            raise ConfigError(f"the dark-count error e0 must be in [0, 1], not {self.e0}")

    def fibre_transmission(self, distance_km: float) -> float:
        """10^(-alpha L / 10): the fibre alone (PNS Eve replaces this part)."""
        check_distance(distance_km)
        return float(10.0 ** (-self.alpha_db_per_km * distance_km / 10.0))

    def transmittance(self, distance_km: float) -> float:
        """eta = 10^(-alpha L / 10) * eta_bob: the chance one photon from Alice makes Bob's detector click."""
        return self.fibre_transmission(distance_km) * self.eta_bob


def check_distance(distance_km: float) -> None:
    if not math.isfinite(distance_km) or distance_km < 0:
        raise ConfigError(f"the distance must be a finite number of km >= 0, not {distance_km}")


@dataclass(frozen=True)
class SourceSettings:
    """Alice's weak coherent source: a signal, a weak decoy and a vacuum decoy, picked at random per pulse.

    Why these defaults: mu = 0.5 is close to the LMC optimum at every distance for GYS (0.43-0.49).
    The weak decoy should be small (the vacuum+weak bound of Ma, Qi, Zhao and Lo, PRA 72, 012326
    (2005), is tight as nu -> 0) but not so small that its gain is lost in the statistics: MQZL
    recommend nu around 0.1 for mu ~ 0.5. Most pulses are signals (p_mu = 0.8): only signals give
    key, decoys and vacuum are disclosed entirely to measure their gains. 10 % weak decoys give
    ~1 300 decoy detections per 10^7 pulses at 25 km, enough for a 3-4 % error on the decoy gain and
    so on Y1^L; vacuum pulses only pin Y0, whose term in Y1^L is ~10^-3 of the others at these
    distances, so 10 % is ample.
    """

    mu: float = 0.5
    nu: float = 0.1
    p_mu: float = 0.8
    p_nu: float = 0.1
    p_vacuum: float = 0.1

    def __post_init__(self) -> None:
        for name in ("mu", "nu", "p_mu", "p_nu", "p_vacuum"):
            _finite(name, getattr(self, name))
        if not 0.0 < self.nu < self.mu <= 5.0:
            raise ConfigError(f"intensities must satisfy 0 < nu < mu <= 5, not mu={self.mu}, nu={self.nu}")
        probabilities = (self.p_mu, self.p_nu, self.p_vacuum)
        if any(p <= 0 for p in probabilities) or abs(sum(probabilities) - 1.0) > 1e-9:
            raise ConfigError(f"p_mu, p_nu and p_vacuum must be > 0 and add up to 1, not {probabilities}")

    @property
    def intensities(self) -> tuple[float, float, float]:
        return (self.mu, self.nu, 0.0)

    @property
    def probabilities(self) -> tuple[float, float, float]:
        return (self.p_mu, self.p_nu, self.p_vacuum)


@dataclass(frozen=True)
class Eavesdropper:
    """An attack on a share `fraction` of the pulses (Eve cannot tell signals from decoys).

    - ``intercept-resend``: Eve measures each attacked pulse in a random basis and resends her result
      (with the same detection statistics, so the gain does not betray her); when her basis differs
      from Alice's, Bob's sifted bit is random: +25 % errors on the attacked sifted bits
      (Bennett and Brassard 1984).
    - ``pns``: photon-number splitting (Brassard, Lütkenhaus, Mor and Sanders, PRL 85, 1330 (2000)):
      on attacked pulses Eve blocks the vacuum and single-photon ones, keeps one photon of every
      multi-photon pulse and sends the rest to Bob over a lossless line; the unattacked pulses she
      forwards over a lossless line with a loss she tunes so that Bob's SIGNAL gain is the one he
      expects from his fibre. Without decoys Bob would see nothing (Hwang, PRL 91, 057901 (2003)).
    """

    kind: EveKind
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in EVE_KINDS:
            raise ConfigError(f"unknown eavesdropper {self.kind!r}: choose one of {', '.join(EVE_KINDS)}")
        if not math.isfinite(self.fraction) or not 0.0 < self.fraction <= 1.0:
            raise ConfigError(f"the attacked fraction must be in (0, 1], not {self.fraction}")


GYS = FibreParams()  # the defaults, as one shared frozen value (LMC 2005's GYS parameters)
DEFAULT_SOURCE = SourceSettings()
