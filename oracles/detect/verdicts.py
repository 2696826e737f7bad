"""Scores into `Verdict`s an operator can act on: which asset, which sensors, how far over the line.

A score alone tells a control room nothing; the verdict names the sensors that carry most of the
deviation (from the detector's per-sensor contributions), says how far over its calibrated
threshold the score is, and adds any blunt first-pass findings (stuck sensor, out of range) in
words. Nothing here decides what happens next: the oracle signs the verdict and the chain decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from core.messages import Sector, Verdict, VerdictKind
from oracles.detect.calibrate import CalibratedDetector
from oracles.detect.features import Finding

__all__ = ["REASON_LIMIT", "assess", "make_verdict", "top_sensors"]

REASON_LIMIT = 512  # Verdict.reason's maximum length


def top_sensors(contributions: NDArray[np.float64], sensors: Sequence[str], *, share: float = 0.8,
                limit: int = 3) -> list[tuple[str, float]]:
    """The fewest sensors (at most `limit`) that together carry `share` of the deviation, with shares."""
    c = np.clip(np.asarray(contributions, dtype=np.float64), 0.0, None)
    total = float(c.sum())
    if total <= 0.0 or not np.isfinite(total):
        return []
    order = np.argsort(-c)
    picked: list[tuple[str, float]] = []
    covered = 0.0
    for j in order[:limit]:
        picked.append((sensors[j], float(c[j]) / total))
        covered += float(c[j]) / total
        if covered >= share:
            break
    return picked


def make_verdict(
    *,
    sector: Sector,
    asset_id: str,
    score: float,
    threshold: float,
    sensors: Sequence[tuple[str, float]],
    observed_at: datetime,
    detector_label: str,
    kind: VerdictKind = VerdictKind.ANOMALY,
    findings: Sequence[Finding] = (),
    note: str = "",
) -> Verdict:
    """One verdict; the reason reads e.g. "PCA T²+Q score 4.1 is 4.1× its threshold 1.0; ...".

    A `note` (e.g. why the verdict is a fault rather than an intrusion) comes right after the score.
    """
    ratio = score / threshold if threshold > 0 else float("inf")
    over = f"{ratio:.1f}× its" if np.isfinite(ratio) else "above its"
    parts = [f"{detector_label} score {score:.3g} is {over} threshold {threshold:.3g}"]
    if note:
        parts.append(note)
    if sensors:
        parts.append("largest deviations: " + ", ".join(f"{name} ({100 * s:.0f} %)" for name, s in sensors))
    parts.extend(f.message for f in findings)
    reason = "; ".join(parts)
    if len(reason) > REASON_LIMIT:
        reason = reason[: REASON_LIMIT - 1] + "…"
    names = tuple(dict.fromkeys([n for n, _ in sensors] + [f.sensor for f in findings]))
    return Verdict(sector=sector, asset_id=asset_id, kind=kind, score=float(score), threshold=float(threshold),
                   sensors=names, reason=reason, observed_at=observed_at)


def assess(
    model: CalibratedDetector,
    recent: NDArray[np.float64],
    sensors: Sequence[str],
    *,
    sector: Sector,
    asset_id: str,
    observed_at: datetime,
    kind: VerdictKind = VerdictKind.ANOMALY,
    findings: Sequence[Finding] = (),
) -> Verdict | None:
    """What the oracle calls per new row: a verdict if the newest smoothed score is over threshold.

    `recent` holds the last rows (oldest first, at least `model.window` of them). First-pass
    findings alone also raise a verdict: a stuck sensor is worth reporting even if the model,
    which looks at sensors jointly, has not moved yet.
    """
    score = model.latest(recent)
    if score <= model.threshold and not findings:
        return None
    contrib = model.detector.contributions(recent[-model.context:])[-max(model.window, 1):].mean(axis=0)
    return make_verdict(sector=sector, asset_id=asset_id, score=score, threshold=model.threshold,
                        sensors=top_sensors(contrib, sensors), observed_at=observed_at,
                        detector_label=model.detector.label, kind=kind, findings=findings)
