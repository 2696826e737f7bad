"""One block of N pulses of decoy-state BB84 through fibre, sampled exactly in distribution.

The physical process, pulse by pulse: Alice picks the pulse's intensity class (signal mu, weak
decoy nu, vacuum) with probabilities p_mu, p_nu, p_0; the pulse holds Poisson(intensity) photons;
each photon survives fibre and detector independently with probability eta (the transmittance);
Bob's detector also fires on a dark count with probability Y0; a detected photon lands in the wrong
detector with probability e_det; a dark count gives a random bit; Alice and Bob pick bases at
random and keep (sift) the events where the bases match.

Sampling every pulse costs O(N); instead the same joint law is drawn by thinning, O(detections):

1. The class counts (n_mu, n_nu, n_0) of N independent categorical draws are Multinomial(N, p).
2. Within a class, the numbers of pulses holding k = 0, 1, 2, ... photons are Multinomial(n_x,
   Poisson(x) pmf) (the tail beyond k_max, < 1e-12, is folded into the last bin).
3. Each of the c_k k-photon pulses is detected (at least one of k independent photons survives) with
   probability 1 - (1 - eta)^k, independently: Binomial(c_k, 1 - (1-eta)^k) of them are.
4. Each undetected pulse still clicks on a dark count with probability Y0: Binomial(rest, Y0).
   Together, P(click | k) = 1 - (1-Y0)(1-eta)^k, the yield Y_k of LMC 2005.
5. Given the set of detected pulses, bases, Alice's bit, misalignment and Eve's choices are
   independent per detected event, so they are drawn only for detected events.

Every step is a conditional law of the per-pulse process, so the counts and bits have exactly the
distribution of pulse-by-pulse simulation (pulses are exchangeable; their order is not observable
by anything downstream). A double click (dark count and photon together) is ignored, as in LMC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from links.qkd.keyrate import expected_stats
from links.qkd.params import Eavesdropper, FibreParams, SourceSettings

__all__ = ["ClassRecord", "PulseRecord", "pns_forwarding_transmittance", "simulate_pulses"]

Bits = NDArray[np.uint8]


@dataclass(frozen=True)
class ClassRecord:
    """What one intensity class gave: pulses sent, detections (bases not yet compared), sifted bits."""

    intensity: float
    pulses: int
    detections: int
    alice_bits: Bits  # sifted, Alice's values
    bob_bits: Bits  # sifted, Bob's values, same positions

    @property
    def gain(self) -> float:
        return self.detections / self.pulses if self.pulses else 0.0

    @property
    def qber(self) -> float:
        """Errors among sifted bits: only for classes whose bits are disclosed (decoy, vacuum)."""
        n = len(self.alice_bits)
        return float(np.count_nonzero(self.alice_bits != self.bob_bits)) / n if n else 0.0


@dataclass(frozen=True)
class PulseRecord:
    signal: ClassRecord
    decoy: ClassRecord
    vacuum: ClassRecord


def _photon_pmf(intensity: float) -> NDArray[np.float64]:
    if intensity <= 0.0:
        return np.ones(1)
    k_max = int(intensity + 12.0 * math.sqrt(intensity) + 20)
    k = np.arange(k_max + 1)
    log_pmf = -intensity + k * math.log(intensity) - np.array([math.lgamma(i + 1.0) for i in k])
    pmf = np.exp(log_pmf)
    pmf[-1] += max(0.0, 1.0 - float(pmf.sum()))
    normalised: NDArray[np.float64] = pmf / pmf.sum()
    return normalised


def _detections(rng: np.random.Generator, pulses: int, intensity: float, per_photon: float, y0: float,
                *, photons_lost_to_eve: int = 0) -> tuple[int, int]:
    """(photon-detected pulses, dark-count-only pulses) among `pulses` pulses of this intensity.

    `photons_lost_to_eve` = 1 models PNS: Eve keeps one photon and blocks pulses with fewer than two.
    """
    if pulses == 0:
        return 0, 0
    counts = rng.multinomial(pulses, _photon_pmf(intensity))
    photons = np.arange(len(counts)) - photons_lost_to_eve
    click = 1.0 - (1.0 - per_photon) ** np.clip(photons, 0, None)
    detected = int(rng.binomial(counts, click).sum())
    dark = int(rng.binomial(pulses - detected, y0))
    return detected, dark


def _pns_gain(intensity: float, eta_bob: float) -> float:
    """Expected photon-detection probability of a PNS-attacked pulse: n-1 photons on a lossless line."""
    pmf = _photon_pmf(intensity)
    photons = np.clip(np.arange(len(pmf)) - 1, 0, None)
    return float((pmf * (1.0 - (1.0 - eta_bob) ** photons)).sum())


def pns_forwarding_transmittance(distance_km: float, params: FibreParams, source: SourceSettings,
                                 fraction: float) -> float:
    """The per-photon transmittance PNS Eve gives the pulses she does not attack, so that Bob's signal
    gain equals the one his calibrated fibre gives: (1-f) Q_mu(T) + f Q_pns = Q_mu(expected).

    Between the fibre's own (nothing to hide) and a lossless line into Bob's detector (eta_bob), the
    best she can do when her attacked pulses alone already fall short.
    """
    expected = expected_stats(distance_km, params, source).signal.gain - params.y0
    if fraction >= 1.0:
        return params.eta_bob
    target = (expected - fraction * _pns_gain(source.mu, params.eta_bob)) / (1.0 - fraction)
    if target <= 0.0:
        return 0.0
    if target >= 1.0:
        return params.eta_bob
    needed = -math.log(1.0 - target) / source.mu
    return min(max(needed, 0.0), params.eta_bob)


def _class(rng: np.random.Generator, pulses: int, intensity: float, distance_km: float, params: FibreParams,
           eve: Eavesdropper | None, pns_transmittance: float) -> ClassRecord:
    eta = params.transmittance(distance_km)
    attacked = int(rng.binomial(pulses, eve.fraction)) if eve is not None else 0
    groups: list[tuple[int, int, bool]] = []  # (photon-detected, dark-only, intercepted-and-resent)
    if eve is not None and eve.kind == "pns":
        groups.append((*_detections(rng, attacked, intensity, params.eta_bob, params.y0, photons_lost_to_eve=1),
                       False))
        groups.append((*_detections(rng, pulses - attacked, intensity, pns_transmittance, params.y0), False))
    else:
        groups.append((*_detections(rng, attacked, intensity, eta, params.y0), True))
        groups.append((*_detections(rng, pulses - attacked, intensity, eta, params.y0), False))
    detections = sum(d + k for d, k, _ in groups)
    photon = np.concatenate([np.ones(d, dtype=bool) for d, _, _ in groups]
                            + [np.zeros(k, dtype=bool) for _, k, _ in groups])
    resent = np.concatenate([np.full(d, r) for d, _, r in groups] + [np.zeros(k, dtype=bool) for _, k, _ in groups])
    sifted = rng.random(detections) < 0.5  # Bob's basis equals Alice's
    photon, resent = photon[sifted], resent[sifted]
    n = len(photon)
    alice = rng.integers(0, 2, n, dtype=np.uint8)
    flip = rng.random(n) < params.e_det
    # A wrong-basis interception (Eve's basis differs from Alice's half of the time) leaves Bob a
    # random bit, as does a dark count; otherwise the photon carries Alice's bit, flipped by misalignment.
    randomised = ~photon | (resent & (rng.random(n) < 0.5))
    random_bits = rng.integers(0, 2, n, dtype=np.uint8)
    bob = np.where(randomised, random_bits, alice ^ flip.astype(np.uint8)).astype(np.uint8)
    return ClassRecord(intensity, pulses, detections, alice, bob)


def simulate_pulses(distance_km: float, pulses: int, *, params: FibreParams, source: SourceSettings,
                    rng: np.random.Generator, eve: Eavesdropper | None = None) -> PulseRecord:
    """Send `pulses` pulses and return per class the counts and the sifted bits of both ends."""
    n_signal, n_decoy, n_vacuum = (int(c) for c in rng.multinomial(pulses, source.probabilities))
    pns_t = (pns_forwarding_transmittance(distance_km, params, source, eve.fraction)
             if eve is not None and eve.kind == "pns" else 0.0)
    return PulseRecord(
        signal=_class(rng, n_signal, source.mu, distance_km, params, eve, pns_t),
        decoy=_class(rng, n_decoy, source.nu, distance_km, params, eve, pns_t),
        vacuum=_class(rng, n_vacuum, 0.0, distance_km, params, eve, pns_t),
    )
