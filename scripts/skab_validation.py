"""Validation of SKAB detectors on `anomaly-free.csv` alone: false alarms and detection of synthetic faults.

Usage: PYTHONPATH=. python scripts/skab_validation.py PATH/anomaly-free.csv [--candidate NAME ...] [--list]

What it measures (the protocol of docs/detection.md, "Validation"; no SKAB test row is read):

- Each candidate is fitted exactly as production fits it (`oracles.detect.production.fit_config`,
  `Calibration`'s defaults) on 400 rows from each of 21 starts (0, 400, …, 8,000), as each SKAB file
  is fitted on its first 400, and scores the next 750 rows (a SKAB file's test part).
- **FAR**: the share of those 750 normal rows flagged, averaged over the 21 starts.
- **The margin rule**: the threshold is the calibrated one times the smallest multiple of 0.25 (≥ 1)
  at which the mean FAR is ≤ 10 %. A candidate that is a union of detectors (`a|b`) gives each
  member the rule at 10 %/members, so that the union's false alarms stay within the same budget.
- **step** (the recorded detection metric): a step of 1, 2, 3 training sd held on rows 700–999 of the
  segment (test rows 300–599) on each of the 8 channels in turn; the share of its 300 rows flagged,
  averaged over channels, sizes and starts.
- Other synthetic faults, reported beside it (not used for the margin or the step figure):
  **ramp** — a drift from 0 to 2, 4, 6 training sd over the 300 rows (the same mean offset as the
  steps: a fouling, a heater's slow failure); **variance** — Gaussian noise of 1, 2, 3 times the
  channel's row-to-row noise sd (√(var Δx / 2)) added (a loose bearing, cavitation: the vibration
  RMS gets noisier, not higher); **relation** — in each of the two most correlated channel pairs of
  the training rows, the second channel's deviations from its mean over the fault rows reversed
  (level and variance kept, the relation to its partner broken: a mis-wired or spoofed sensor).
- **delay**: the median over detected steps of rows from the step's start to its first flag.

Candidates are named in `CANDIDATES` (`--list` prints them); "production" is the water plan's
detector (`sectors/water/plugin.py`). The experimental variants are defined here, not in production
code; docs/detection.md records which won.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from oracles.detect.drift import DriftPca, trailing_mean
from oracles.detect.eval import read_csv
from oracles.detect.features import numeric_columns, to_matrix
from oracles.detect.models import Detector
from oracles.detect.pca import EPS, PcaT2Q, ShrunkT2, check_rows
from oracles.detect.production import Calibration, DetectorConfig, fit_config, sector_config

Array = NDArray[np.float64]
Flags = NDArray[np.bool_]

TRAIN, TEST = 400, 750
STARTS = tuple(range(0, 8001, 400))
FAULT_START, FAULT_END = 700, 1000  # segment rows: test rows 300–599
STEP_SIZES = (1.0, 2.0, 3.0)
FAR_BUDGET = 0.10
MARGINS = tuple(1.0 + 0.25 * k for k in range(61))  # 1 … 16
FAULT_KINDS = ("step", "ramp", "variance", "relation")


@dataclass(frozen=True)
class Member:
    """One detector of a candidate: its configuration, and a factory when it is an experimental class."""

    config: DetectorConfig
    factory: Callable[[], Detector] | None = None


@dataclass(frozen=True)
class Candidate:
    """A detector (or a union of detectors, each on a share of the false-alarm budget) to validate."""

    name: str
    members: tuple[Member, ...]
    note: str = ""


@dataclass
class Faults:
    """The synthetic faults of one segment: kind, and per fault the modified segment rows."""

    kind: list[str] = field(default_factory=list)
    rows: list[Array] = field(default_factory=list)


def production() -> DetectorConfig:
    return sector_config()


def variant(**options: object) -> Member:
    """The production detector with other options (margin by the rule, as always)."""
    base = production()
    return Member(replace(base, options={**base.options, **options}, calibration=Calibration(window=base.calibration.window)))


CANDIDATES: dict[str, Candidate] = {}


def register(name: str, *members: Member, note: str = "") -> None:
    CANDIDATES[name] = Candidate(name, members, note)


register("production", Member(replace(production(), calibration=Calibration(window=production().calibration.window))),
         note="the water plan's pca-drift, mean of 30 rows")
register("shrunk", variant(shrink=True), note="run 4: T² over a Ledoit-Wolf-shrunk covariance (not kept)")
register("mean10", variant(mean_rows=10, shrink=False), note="T²+Q")
register("mean20", variant(mean_rows=20, shrink=False), note="T²+Q")


class Mahalanobis(PcaT2Q):
    """T² over every principal component (no Q: the residual space is empty), each component's
    variance shrunk toward 1 (the standardised features' identity): λ' = (1 − α)·λ + α. With α = 0 it
    is the Mahalanobis distance; α = 1 the sum of squared per-channel z-scores (production's
    `ShrunkT2` takes Ledoit–Wolf's α instead of a fixed one)."""

    def __init__(self, *, alpha: float = 0.0, reference_quantile: float = 0.99) -> None:
        super().__init__(explained_variance=0.85, reference_quantile=reference_quantile)
        self.alpha = alpha

    def fit(self, normal: Array) -> Mahalanobis:
        from sklearn.decomposition import PCA

        x = check_rows(normal)
        z = self.scaler.fit(x).transform(x)
        pca = PCA(n_components=x.shape[1], svd_solver="full").fit(z)
        self.pca = pca
        var = (1.0 - self.alpha) * pca.explained_variance_ + self.alpha
        self.inv_var = 1.0 / np.maximum(var, EPS)
        t2, _ = self._stats(z)
        self.t2_ref = max(float(np.quantile(t2, self.reference_quantile)), EPS)
        self.q_ref = np.inf
        return self


class InnerDrift(DriftPca):
    """`DriftPca` whose windowed features are judged by another model than production's."""

    def __init__(self, inner: Callable[[], PcaT2Q], **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.make_inner = inner

    def fit(self, normal: Array) -> InnerDrift:
        super().fit(normal)
        if self.windowed:
            self.inner = self.make_inner()
            self.inner.fit(self.features(check_rows(normal))[self.context - 1:])
        return self


def drift_with(inner: Callable[[], PcaT2Q], **options: object) -> Callable[[], Detector]:
    def make() -> Detector:
        return InnerDrift(inner, **options)
    return make


def inner_variant(name: str, inner: Callable[[], PcaT2Q], note: str) -> None:
    base = variant()
    register(name, Member(base.config, drift_with(inner, **base.config.options)), note=note)


inner_variant("mahalanobis", lambda: Mahalanobis(alpha=0.0), "T² over all components, no Q")
inner_variant("shrunk-0.5", lambda: Mahalanobis(alpha=0.5), "T² over all components, variances half-way to 1")
inner_variant("diagonal", lambda: Mahalanobis(alpha=1.0), "sum of squared channel z-scores of the 30-row means")
inner_variant("shrunk-lw-10", lambda: ShrunkT2(independent=10), "Ledoit–Wolf shrinkage, 1 independent row in 10")
inner_variant("shrunk-lw-iid", lambda: ShrunkT2(independent=1), "Ledoit–Wolf shrinkage, rows taken as independent")
register("t2q", variant(shrink=False), note="T²+Q of the 30-row means (the production of 6df3afc)")


class WeightedDrift(DriftPca):
    """`DriftPca` whose trailing mean weighs row k back by (1 − 1/`half`)^k·…: an EWMA truncated at
    `mean_rows` rows (a fixed window, so streaming stays exact), onset-sensitive."""

    def __init__(self, *, half_life: float = 10.0, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.half_life = half_life

    def features(self, x: Array) -> Array:
        rows = self.row_features(x)
        if not self.windowed:
            return rows
        decay = 0.5 ** (1.0 / self.half_life)
        total = rows.copy()
        weight = np.ones(len(rows))
        for lag in range(1, self.mean_rows):
            w = decay ** lag
            total[lag:] += w * rows[:-lag]
            weight[lag:] += w
        out: Array = total / weight[:, None]
        return out


class InnerWeighted(WeightedDrift, InnerDrift):
    """`WeightedDrift` with another model of its features."""

    def __init__(self, inner: Callable[[], PcaT2Q], *, half_life: float, **options: object) -> None:
        WeightedDrift.__init__(self, half_life=half_life, **options)
        self.make_inner = inner


def weighted(half_life: float, mean_rows: int, alpha: float) -> Callable[[], Detector]:
    def make() -> Detector:
        options = {**production().options, "mean_rows": mean_rows, "shrink": False}
        if alpha >= 0:
            return InnerWeighted(lambda: Mahalanobis(alpha=alpha), half_life=half_life, **options)
        return WeightedDrift(half_life=half_life, **options)
    return make


register("ewma-h10", Member(variant().config, weighted(10.0, 30, -1.0)), note="T²+Q, EWMA half-life 10 rows over 30")
register("shrunk-union30|10", variant(), variant(mean_rows=10), note="max of 30- and 10-row scores, 5 % each")
register("shrunk-mean40", variant(mean_rows=40), note="shrunk T² of 40-row means")
class FlooredT2(ShrunkT2):
    """`ShrunkT2` whose per-feature scale is at least `floor` (set before fitting)."""

    def __init__(self, floor: Array, **options: int) -> None:
        super().__init__(**options)
        self.floor = floor

    def fit(self, normal: Array) -> FlooredT2:
        super().fit(normal)
        self.scaler.scale = np.maximum(self.scaler.scale, self.floor)
        return self._refit(normal)

    def _refit(self, normal: Array) -> FlooredT2:
        from sklearn.decomposition import PCA

        z = self.scaler.transform(check_rows(normal))
        self.pca = PCA(n_components=min(z.shape), svd_solver="full").fit(z)
        var = (1.0 - self.alpha) * self.pca.explained_variance_ + self.alpha
        self.inv_var = 1.0 / np.maximum(var, EPS)
        t2, _ = self._stats(z)
        self.t2_ref = max(float(np.quantile(t2, self.reference_quantile)), EPS)
        return self


class WhiteFloorDrift(DriftPca):
    """Shrunk T² of 30-row means whose scales are at least the rows' sd / √`mean_rows` (a mean of
    `mean_rows` rows varies at least as much as white noise's would)."""

    def fit(self, normal: Array) -> WhiteFloorDrift:
        super().fit(normal)
        if self.windowed:
            x = check_rows(normal)
            rows = self.row_features(x)[self.context - 1:]
            self.inner = FlooredT2(rows.std(axis=0) / np.sqrt(self.mean_rows), independent=self.mean_rows)
            self.inner.fit(self.features(x)[self.context - 1:])
        return self


register("white-floor", Member(variant().config, WhiteFloorDrift), note="scales floored at row sd/√30")
def mean_scale_ratio(x: Array, rows: int) -> Array:
    """Per column, `slow_ratio` at the scale of `rows`-row means: the variance of the means against the
    variance their `rows`-apart changes imply (≈ 1 for a level with white noise, ≫ 1 for a wander)."""
    means = trailing_mean(x, rows)[rows - 1:]
    fast = np.var(means[rows:] - means[:-rows], axis=0) / 2.0
    total = np.var(means, axis=0)
    out: Array = np.where(fast > 0.0, total / np.where(fast > 0.0, fast, 1.0), 0.0)
    return out


class WanderDrift(DriftPca):
    """`DriftPca` that also gives the drift treatment to a channel whose `mean_rows`-row means wander
    in training (`mean_scale_ratio` ≥ `wander`), not only to one that drifts from row to row."""

    def __init__(self, *, wander: float = 3.0, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.wander = wander

    def fit(self, normal: Array) -> WanderDrift:
        super().fit(normal)
        if not self.windowed:
            return self
        x = check_rows(normal)
        self.drifting = self.drifting | (mean_scale_ratio(x, self.mean_rows) >= self.wander)
        self.context = (self.baseline_rows if self.drifting.any() else 0) + self.mean_rows
        self.inner.fit(self.features(x)[self.context - 1:])
        return self


def wander(level: float, shrink: bool) -> Callable[[], Detector]:
    def make() -> Detector:
        return WanderDrift(wander=level, shrink=shrink)
    return make


for _level in (3.0, 5.0, 8.0):
    register(f"wander-{_level:g}", Member(variant().config, wander(_level, True)),
             note=f"drift treatment also where 30-row means wander (ratio ≥ {_level:g})")
    register(f"t2q-wander-{_level:g}", Member(variant().config, wander(_level, False)),
             note=f"T²+Q, drift treatment also where 30-row means wander (ratio ≥ {_level:g})")
class MaxZ(PcaT2Q):
    """The largest squared z-score over the channels, each over its own training reference (the test of
    a fault that moves one channel, where the sum of squares adds every other channel's noise)."""

    def fit(self, normal: Array) -> MaxZ:
        x = check_rows(normal)
        z = self.scaler.fit(x).transform(x)
        self.inv_var = 1.0 / np.maximum(np.quantile(z * z, self.reference_quantile, axis=0), EPS)
        self.t2_ref = max(float(np.quantile((z * z * self.inv_var).max(axis=1), self.reference_quantile)), EPS)
        return self

    def score(self, x: Array) -> Array:
        z = self.scaler.transform(check_rows(x, len(self.scaler.mean)))
        out: Array = (z * z * self.inv_var).max(axis=1) / self.t2_ref
        return out


inner_variant("max-z", MaxZ, "largest channel z² of the 30-row means")
register("union30|10", variant(shrink=False), variant(mean_rows=10, shrink=False),
         note="T²+Q, max of 30- and 10-row scores, 5 % each")
register("union30|5", variant(shrink=False), variant(mean_rows=5, shrink=False),
         note="T²+Q, max of 30- and 5-row scores, 5 % each")
register("all-drift", variant(slow_ratio=0.0, shrink=False), note="T²+Q, every channel judged by its deviation from its 60-row median")
register("R2", variant(slow_ratio=2.0, shrink=False), note="T²+Q, drift treatment from R ≥ 2")


def make_faults(seg: Array, rng: np.random.Generator) -> Faults:
    """Every synthetic fault of `FAULT_KINDS` on one segment (train rows first)."""
    train = seg[:TRAIN]
    sd = train.std(axis=0)
    noise = np.sqrt(np.var(np.diff(train, axis=0), axis=0) / 2.0)
    out = Faults()
    span = slice(FAULT_START, FAULT_END)
    ramp = np.linspace(0.0, 1.0, FAULT_END - FAULT_START)
    for j in range(seg.shape[1]):
        for k in STEP_SIZES:
            s = seg.copy()
            s[span, j] += k * sd[j]
            out.kind.append("step")
            out.rows.append(s)
            s = seg.copy()
            s[span, j] += 2.0 * k * sd[j] * ramp
            out.kind.append("ramp")
            out.rows.append(s)
            s = seg.copy()
            s[span, j] += rng.normal(0.0, k * noise[j], FAULT_END - FAULT_START)
            out.kind.append("variance")
            out.rows.append(s)
    corr = np.abs(np.corrcoef(train.T))
    np.fill_diagonal(corr, 0.0)
    pairs = sorted(((corr[a, b], a, b) for a in range(len(corr)) for b in range(a + 1, len(corr))), reverse=True)
    for _, _, b in pairs[:2]:
        s = seg.copy()
        centre = s[span, b].mean()
        s[span, b] = 2.0 * centre - s[span, b]
        out.kind.append("relation")
        out.rows.append(s)
    return out


@dataclass
class MemberScores:
    """Per start: the margin-1 threshold, whether the margin applies, clean scores and fault scores."""

    threshold: list[float] = field(default_factory=list)
    windowed: list[bool] = field(default_factory=list)
    clean: list[Array] = field(default_factory=list)
    faults: list[list[Array]] = field(default_factory=list)


def score_member(member: Member, segments: Sequence[Array], faults: Sequence[Faults]) -> MemberScores:
    out = MemberScores()
    for seg, fs in zip(segments, faults, strict=True):
        det = member.factory() if member.factory else None
        model = fit_config(seg[:TRAIN], member.config, det)
        out.threshold.append(model.threshold)
        out.windowed.append(model.lookback > 1)
        out.clean.append(model.score(seg)[TRAIN:])
        out.faults.append([model.score(f)[TRAIN:] for f in fs.rows])
    return out


def flags_at(ms: MemberScores, i: int, margin: float, scores: Array) -> Flags:
    thr = ms.threshold[i] * (margin if ms.windowed[i] else 1.0)
    out: Flags = scores > thr
    return out


def rule_margin(ms: MemberScores, budget: float) -> float:
    """The smallest multiple of 0.25 whose mean FAR over the starts is ≤ `budget`."""
    for m in MARGINS:
        far = np.mean([flags_at(ms, i, m, c).mean() for i, c in enumerate(ms.clean)])
        if far <= budget:
            return m
    return MARGINS[-1]


@dataclass(frozen=True)
class Row:
    name: str
    margins: tuple[float, ...]
    far: float
    detection: dict[str, float]
    step_by_size: tuple[float, ...]
    delay: float


def validate(candidate: Candidate, segments: Sequence[Array], faults: Sequence[Faults]) -> Row:
    scored = [score_member(m, segments, faults) for m in candidate.members]
    margins = tuple(rule_margin(ms, FAR_BUDGET / len(scored)) for ms in scored)
    far: list[float] = []
    hits: dict[str, list[float]] = {k: [] for k in FAULT_KINDS}
    by_size: dict[int, list[float]] = {j: [] for j in range(len(STEP_SIZES))}
    delays: list[int] = []
    span = slice(FAULT_START - TRAIN, FAULT_END - TRAIN)
    for i, fs in enumerate(faults):
        clean = np.zeros(TEST, dtype=bool)
        for ms, m in zip(scored, margins, strict=True):
            clean |= flags_at(ms, i, m, ms.clean[i])
        far.append(float(clean.mean()))
        steps = 0
        for f, kind in enumerate(fs.kind):
            flagged = np.zeros(TEST, dtype=bool)
            for ms, m in zip(scored, margins, strict=True):
                flagged |= flags_at(ms, i, m, ms.faults[i][f])
            part = flagged[span]
            hits[kind].append(float(part.mean()))
            if kind == "step":
                by_size[steps % len(STEP_SIZES)].append(float(part.mean()))
                steps += 1
                if part.any():
                    delays.append(int(np.argmax(part)))
    return Row(candidate.name, margins, float(np.mean(far)), {k: float(np.mean(v)) for k, v in hits.items()},
               tuple(float(np.mean(by_size[j])) for j in range(len(STEP_SIZES))),
               float(np.median(delays)) if delays else float("nan"))


def load(path: Path) -> Array:
    frame = read_csv(path, ";")
    return to_matrix(frame, [c for c in numeric_columns(frame) if c not in ("anomaly", "changepoint")])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("csv", type=Path, nargs="?", help="SKAB's data/anomaly-free/anomaly-free.csv")
    parser.add_argument("--candidate", action="append", default=None, help="a name from --list (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the candidates and exit")
    parser.add_argument("--seed", type=int, default=0, help="seed of the variance faults' noise")
    parser.add_argument("--offset", type=int, default=0, choices=range(256), metavar="ROWS",
                        help="shift every start by ROWS (0–255), a check of the figures' spread")
    parser.add_argument("--every", type=int, default=400, metavar="ROWS",
                        help="rows between starts (default 400: the 21 starts of the protocol; 50 gives 166 "
                             "overlapping segments, one margin for all: a steadier check)")
    args = parser.parse_args(argv)
    if args.list:
        for c in CANDIDATES.values():
            print(f"{c.name:24s} {c.note}")
        return 0
    if args.csv is None:
        print("error: give the path of anomaly-free.csv", file=sys.stderr)
        return 2
    names = args.candidate or ["production"]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        print(f"error: unknown candidate(s) {', '.join(unknown)}; --list names them", file=sys.stderr)
        return 2
    try:
        x = load(args.csv)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    starts = list(range(args.offset, len(x) - TRAIN - TEST + 1, args.every)) if args.every != 400 else \
        [s + args.offset for s in STARTS]
    if args.every < 1 or not starts or starts[-1] + TRAIN + TEST > len(x):
        print(f"error: {args.csv} has {len(x)} rows; the protocol needs {STARTS[-1] + args.offset + TRAIN + TEST}",
              file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    segments = [x[s:s + TRAIN + TEST] for s in starts]
    faults = [make_faults(seg, rng) for seg in segments]
    sizes = "/".join(f"{k:g}" for k in STEP_SIZES)
    print(f"{'candidate':24s} {'margin':>11s} {'FAR %':>6s} {'step %':>7s} {'(' + sizes + ' sd)':>18s} "
          f"{'ramp %':>7s} {'var %':>6s} {'rel %':>6s} {'delay':>6s}")
    for name in names:
        r = validate(CANDIDATES[name], segments, faults)
        by = "/".join(f"{100 * v:.1f}" for v in r.step_by_size)
        margins = "|".join(f"{m:g}" for m in r.margins)
        print(f"{r.name:24s} {margins:>11s} {100 * r.far:6.1f} {100 * r.detection['step']:7.1f} {by:>18s} "
              f"{100 * r.detection['ramp']:7.1f} {100 * r.detection['variance']:6.1f} "
              f"{100 * r.detection['relation']:6.1f} {r.delay:6.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
