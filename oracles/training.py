"""Each oracle's detection model: trained on its sector twin's normal operation, saved, loaded.

An oracle cannot learn "normal" from the stream it is judging, so before it starts it loads a
`SectorModel`: the sector's sensors in column order, a first-pass check (ranges, stuck values,
jumps) and a detector whose threshold was calibrated on held-back normal rows
(`oracles.detect.calibrate`). `train_sector` produces one by running a fresh twin with nothing
broken; `save_model`/`load_model` keep it under `<home>/models/<sector>.joblib`.

How much normal operation (`PLANS`): enough that the *training* part (the older 75 %) covers
the sector's daily cycle where the twin has one and training stays near 30 s on this machine.
Rows are one report period apart online (`sectors.runner.REPORT_PERIOD_S`); where a day of
report periods costs too much, training samples every `stride`-th period: the twins' states are
snapshots (a power flow, a hydraulic solution), so a row taken 3 minutes after the last is as
normal as one taken a minute after, and the jump limit learned from wider steps is only more
lenient. Transportation cannot cover a day (uxsim costs ~0.3 s per simulated minute), so it
trains on the morning peak the twin starts in and says so.

Normal operation includes the conditions a sector is built for, not only its quiet days. Weather
is an input (`TrainingPlan.inputs`): the sewage twin is trained through dry spells and rain up to
a cloudburst, because a model that never saw rain read the first storm as the fault and voted the
CSO outfall, spilling as designed, out of service. Identical assets share what they may do
(`TrainingPlan.pooled`): a link that flowed freely all through training may queue another
morning. A totaliser is judged by its increments (`TrainingPlan.counters`, `increments`).

The file is a pickle (joblib), and unpickling runs code. So the sidecar `<sector>.json` holds the
format version, the sector, the sensors, the scikit-learn version and the pickle's sha256, and
`load_model` checks all of that *before* unpickling the verified bytes. The hash catches
corruption and mix-ups, not a forger who rewrites both files: protect `models/` like
`keystores/`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import pickle
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.errors import ConfigError
from core.messages import Reading, Sector, Verdict, VerdictKind
from oracles.detect.calibrate import CalibratedDetector, fit_calibrated
from oracles.detect.classify import classify, explain, value_grid
from oracles.detect.features import Finding, FirstPassCheck
from oracles.detect.models import make_detector
from oracles.detect.verdicts import make_verdict, top_sensors
from sectors.anchors import anchor_node
from sectors.plugin import TrainingPlan, by_sector, plugin_of
from sectors.runner import REPORT_PERIOD_S, TwinRunner, open_twin, parse_sector

__all__ = [
    "EXPECTED_RUNNING",
    "FORMAT_VERSION",
    "PLANS",
    "STOPPED_SHARE",
    "ModelError",
    "SectorModel",
    "TrainingPlan",
    "collect_normal",
    "fit_model",
    "increments",
    "load_model",
    "load_or_train",
    "model_path",
    "normal_twin",
    "read_sidecar",
    "save_model",
    "sidecar_path",
    "train_sector",
]

FORMAT_VERSION = 3
"""2: sewage trained through rain (MSET, the CSO totaliser as increments), transport's pooled limits,
hospitals' arrival and admission rates; 3: an empty road link (a pooled loop at 0) is not a stuck
sensor; `load_or_train` retrains a model of an older format."""
STOPPED_SHARE = 0.5
"""An asset has stopped when at least this share of its sensors read zero where normal never did."""
EXPECTED_RUNNING = 0.5
"""A sensor's normal estimate above this share of its normal maximum: it would not read zero now."""
Array = NDArray[np.float64]
Progress = Callable[[int, int], None]
Drive = Callable[[TwinRunner, int], None]
"""Sets a twin's exogenous inputs (weather) before training row `i` is collected."""
Inputs = Callable[[int, int, int, int], Drive]
"""(seed, rows, stride, period_s) -> the `Drive` of one training run."""


class ModelError(ConfigError):
    """A saved detection model is missing, corrupt, tampered with, outdated or for another sector."""


PLANS: Mapping[Sector, TrainingPlan] = by_sector(lambda p: p.training)
"""Each sector's training plan (``SectorPlugin.training``): how much normal operation, and why."""


@dataclass
class SectorModel:
    """Everything an oracle needs to judge one row of its sector: columns, checks, detector."""

    sector: Sector
    sensors: tuple[str, ...]
    assets: dict[str, str]
    units: dict[str, str]
    check: FirstPassCheck
    model: CalibratedDetector
    period_s: int
    n_rows: int
    seed: int
    trained_at: datetime
    detector: str
    stride: int = 1
    grid: Array = field(default_factory=lambda: np.zeros((0, 0)))  # reconstruction values per sensor
    normal_level: float = 0.0  # median smoothed score on the held-back normal rows
    counters: tuple[int, ...] = ()  # columns of totalisers, judged by their increase per report period
    format_version: int = FORMAT_VERSION

    def row(self, values: Mapping[str, float]) -> Array | None:
        """One row in column order, or None if any sensor is missing."""
        try:
            return np.array([float(values[name]) for name in self.sensors], dtype=np.float64)
        except KeyError:
            return None

    def assess(self, recent: Array, observed_at: datetime) -> Verdict | None:
        """A verdict on the newest of `recent` rows (oldest first), or None if it looks normal.

        First-pass findings and the calibrated score decide *whether*; `classify` decides the kind
        (fault, intrusion or anomaly); the asset is the one whose sensors carry most of the
        deviation (the suspect's, for an intrusion), unless another node's asset has stopped
        (`_root_cause`).
        """
        x = increments(np.atleast_2d(np.asarray(recent, dtype=np.float64)), self.counters)
        if len(x) == 0:
            return None
        findings = self.check.check(x)
        score = self.model.latest(x)
        if score <= self.model.threshold:
            findings = self._persistent(x, findings)
            if not findings:
                return None
        ev = explain(self.model, x, self.sensors, grid=self.grid, findings=findings, assets=self.assets,
                     baseline=self.normal_level)
        kind, why = classify(ev)
        if kind is VerdictKind.INTRUSION and ev.suspect is not None:
            asset = self.assets[ev.suspect]
            named = [(ev.suspect, ev.reconstruction_share)] if score > self.model.threshold else []
        else:
            # over the threshold: contribution shares; raised by findings alone: the sensors they name
            weights = ev.shares if score > self.model.threshold or not findings else \
                {f.sensor: 1.0 / len(findings) for f in findings}
            per_asset: dict[str, float] = {}
            for name, share in weights.items():
                per_asset[self.assets[name]] = per_asset.get(self.assets[name], 0.0) + share
            asset = self._root_cause(x[-1], per_asset)
            named = top_sensors(np.array([weights.get(n, 0.0) for n in self.sensors]), self.sensors)
        return make_verdict(sector=self.sector, asset_id=asset, score=score, threshold=self.model.threshold,
                            sensors=named, observed_at=observed_at, detector_label=self.model.detector.label,
                            kind=kind, findings=findings, note=why)

    def _stopped(self, row: Array) -> dict[str, float]:
        """Per asset, the share of its sensors that read zero where normal operation says they would not.

        A data centre that is down reports status 0 and utilisation 0; the switch that routes to it
        sees latency and errors soar but keeps most of its sensors alive. A dead reading is the
        failure's own signature, a soaring one often its consequence.

        "Would not" is either *never* (the sensor never read zero in normal operation) or, where
        the detector can estimate the normal state most like this row (MSET), *not in a state
        like this one*: a lift-station pump reads zero half of every dry day, but not in a storm,
        when both pumps run; one that reads zero in a storm has stopped, and the CSO spilling
        more is its consequence.
        """
        if self.grid.size == 0:
            return {}
        low, high = self.grid[0], self.grid[-1]
        scale = np.maximum(np.abs(high), 1e-9)
        live = low > 1e-6 * scale
        estimate = getattr(self.model.detector, "estimate", None)
        if callable(estimate):
            expected = np.asarray(estimate(row[None, :]), dtype=np.float64)[0]
            live = live | (expected > EXPECTED_RUNNING * scale)
        dead = (np.abs(row) <= 1e-6 * scale) & live
        counts: dict[str, list[int]] = {}
        for name, is_dead in zip(self.sensors, dead.tolist(), strict=True):
            c = counts.setdefault(self.assets[name], [0, 0])
            c[0] += int(is_dead)
            c[1] += 1
        return {a: d / n for a, (d, n) in counts.items() if d}

    def _root_cause(self, row: Array, per_asset: Mapping[str, float]) -> str:
        """The asset a fault verdict names: the one with most of the deviation, unless an asset has stopped.

        If an asset has most of its own sensors dead (`_stopped`), that asset is where the fault
        is, and the assets whose readings merely moved feel its consequences. Several stopped
        assets name one of them (the one with most deviation) only when they are all part of one
        on-chain node (a lift station's two pumps lose their power together); otherwise the
        stopped ones are as likely consequences as causes, and the largest deviation is named. A
        stopped asset replaces the largest only when the two belong to different on-chain nodes:
        inside one node the choice decides nothing that is voted on, and the controller locates
        the faulted section itself (a line fault de-energises many buses and lines at once, and
        names none of them uniquely).
        """
        largest = max(per_asset, key=lambda a: per_asset[a])
        stopped = [a for a, share in self._stopped(row).items() if share >= STOPPED_SHARE]
        if not stopped or largest in stopped:
            return largest
        nodes = {anchor_node(self.sector, a) for a in stopped}
        if len(stopped) > 1 and (len(nodes) > 1 or None in nodes):
            return largest
        root = max(stopped, key=lambda a: per_asset.get(a, 0.0))
        node = anchor_node(self.sector, root)
        return largest if node is not None and node == anchor_node(self.sector, largest) else root

    def _persistent(self, x: Array, findings: list[Finding]) -> list[Finding]:
        """Findings that the previous row had too, on the same sensor (a stuck value always counts).

        The first-pass limits come from a finite stretch of normal operation, and a sensor that
        reports in coarse steps (a traffic loop counting platoons) touches them now and then for one
        sample. Like the score's rolling median, this keeps one odd sample from raising a verdict
        on its own; a broken or falsified sensor stays out of bounds and is reported a row later.
        """
        if not findings or len(x) < 2 or self.model.window <= 1:
            return findings
        before = {(f.sensor, f.kind) for f in self.check.check(x[:-1])}
        return [f for f in findings if f.kind == "frozen" or (f.sensor, f.kind) in before]

    def sidecar(self) -> dict[str, Any]:
        """The facts about this model an operator (and `load_model`) reads without unpickling."""
        m = self.model
        return {
            "format_version": self.format_version, "sector": self.sector.value, "detector": self.detector,
            "sensors": list(self.sensors), "n_sensors": len(self.sensors), "n_rows": self.n_rows,
            "stride": self.stride, "period_s": self.period_s, "seed": self.seed,
            "trained_at": self.trained_at.isoformat(), "sklearn": _sklearn_version(),
            "calibration": {"threshold": m.threshold, "holdout_far": m.holdout_far, "target_far": m.target_far,
                            "window": m.window, "n_train": m.n_train, "n_holdout": m.n_holdout},
        }


def increments(rows: Array, counters: Sequence[int], *, per: int = 1) -> Array:
    """`rows` as the detector sees them: each totaliser column replaced by its increase since the
    row before, per report period (`per`: report periods between rows); the first row is dropped.

    A totaliser (the CSO's cumulative spill volume) only ever grows: after one storm it sits above
    every value normal operation showed before, for good, and a model judging its level would call
    every later row abnormal. Its increase per period is a rate that returns to zero when the spill
    stops, and it still has to agree with the spill flow meter, so a falsified totaliser shows.
    """
    if not counters:
        return rows
    out = rows[1:].copy()
    cols = list(counters)
    out[:, cols] = np.diff(rows[:, cols], axis=0) / per
    return out


def normal_twin(sector: Sector | str, *, seed: int = 0) -> TwinRunner:
    """A fresh twin for training: as `open_twin`, minus what no sensor reads (transport's baseline)."""
    which = parse_sector(sector)
    opener = plugin_of(which).open_training_twin
    if opener is not None:
        return TwinRunner(which, opener(seed), REPORT_PERIOD_S[which])
    return open_twin(which, seed=seed)


def collect_normal(runner: TwinRunner, *, rows: int, stride: int = 1, progress: Progress | None = None,
                   drive: Drive | None = None) -> tuple[list[Reading], Array]:
    """Advance `runner` `rows` times by `stride` report periods: the first readings (names) and the rows.

    `drive` sets the twin's exogenous inputs (weather) before each row is collected.
    """
    if rows < 8:
        raise ConfigError(f"train on at least 8 rows, got {rows}")
    if stride < 1:
        raise ConfigError(f"stride must be ≥ 1, got {stride}")
    period = runner.period_s * stride
    if drive is not None:
        drive(runner, 0)
    first = runner.advance(period)
    names = [r.sensor_id for r in first]
    out = np.empty((rows, len(names)), dtype=np.float64)
    readings = first
    for i in range(rows):
        if i:
            if drive is not None:
                drive(runner, i)
            readings = runner.advance(period)
        values = {r.sensor_id: r.value for r in readings}
        out[i] = [values[n] for n in names]
        if progress is not None:
            progress(i + 1, rows)
    return first, out


def train_sector(sector: Sector | str, *, rows: int | None = None, seed: int = 0, detector: str | None = None,
                 target_far: float = 0.005, window: int = 3, stride: int | None = None,
                 progress: Progress | None = None, runner: TwinRunner | None = None) -> SectorModel:
    """Train and calibrate a sector's model on normal operation (`PLANS` gives the defaults).

    `detector` names one (`oracles.detect.models.DETECTORS`); by default the plan's. Without
    `runner` a fresh twin is opened and closed; with one (of the same sector) training
    advances it and leaves it open, so a caller can go on to break it and watch.
    """
    which = parse_sector(sector)
    plan = PLANS[which]
    n = plan.rows if rows is None else rows
    step = plan.stride if stride is None else stride
    if runner is not None and runner.sector is not which:
        raise ConfigError(f"a {runner.sector.value} twin cannot train the {which.value} model")
    period_s = REPORT_PERIOD_S[which]
    seeds = [seed + 1000 * k for k in range(plan.runs)]
    raws: list[Array] = []
    first: list[Reading] = []
    for k, s in enumerate(seeds):
        drive = None if plan.inputs is None else plan.inputs(s, n, step, period_s)
        done = k * n
        tick = None if progress is None else \
            (lambda i, _total, done=done: progress(done + i, n * len(seeds)))
        if k == 0 and runner is not None:
            first, raw = collect_normal(runner, rows=n, stride=step, progress=tick, drive=drive)
        else:
            with normal_twin(which, seed=s) as own:
                names, raw = collect_normal(own, rows=n, stride=step, progress=tick, drive=drive)
            if k == 0:
                first = names
            elif [r.sensor_id for r in names] != [r.sensor_id for r in first]:
                raise ConfigError(f"the {which.value} twin reported other sensors on seed {s}")
        raws.append(raw)
    return fit_model(which, first, np.vstack(raws), seed=seed, detector=detector, target_far=target_far, window=window,
                     stride=step)


def fit_model(sector: Sector | str, first: Sequence[Reading], raw: Array, *, seed: int = 0, detector: str | None = None,
              target_far: float = 0.005, window: int = 3, stride: int = 1) -> SectorModel:
    """Fit a sector's model to normal rows already collected (`collect_normal`): `first` names the columns.

    Collecting is the expensive half of training (transportation's twin takes minutes); this half
    is cheap, so a benchmark can fit variants to one collection.
    """
    which = parse_sector(sector)
    plan = PLANS[which]
    period_s = REPORT_PERIOD_S[which]
    n, step = len(raw), stride
    names = tuple(r.sensor_id for r in first)
    counters = tuple(j for j, r in enumerate(first) if r.quantity in plan.counters)
    normal = increments(raw, counters, per=step)
    groups = _pools(first, plan.pooled)
    try:
        check = FirstPassCheck(names, range_margin=plan.range_margin, jump_factor=plan.jump_factor).fit(
            normal, groups=groups)
        chosen = detector if detector is not None else plan.detector
        options = plan.detector_options if detector is None else {}
        det = make_detector(chosen, **options) if isinstance(chosen, str) else chosen()
        calibrated = _floored(fit_calibrated(normal, detector=det, target_far=target_far, window=window), normal)
    except ValueError as exc:
        raise ConfigError(f"cannot train the {which.value} model: {exc}") from exc
    return SectorModel(sector=which, sensors=names, assets={r.sensor_id: r.asset_id for r in first},
                       units={r.sensor_id: r.unit for r in first}, check=check, model=calibrated,
                       period_s=period_s, n_rows=n, seed=seed, trained_at=datetime.now(UTC),
                       detector=calibrated.detector.name, stride=step, grid=value_grid(normal),
                       normal_level=float(np.median(calibrated.score(normal)[calibrated.n_train:])),
                       counters=counters)


def _pools(first: Sequence[Reading], pooled: tuple[str, ...]) -> list[str] | None:
    """Per sensor, the group whose first-pass limits it shares: its quantity, on assets built alike.

    Only the asset types the plan names (transportation's links: one free-flow speed, one jam
    density): there a link that flowed freely all through training is as likely to queue another
    morning as the link that queued, and limits learnt link by link called a normal peak-hour
    queue out of range (spoofed-sensor and fault verdicts on links with no incident). Every other
    sensor keeps its own limits (the OD pairs differ in length, a water junction in elevation).
    """
    if not pooled:
        return None
    out = []
    for r in first:
        kind = r.asset_id.partition(":")[0]
        out.append(f"{kind}/{r.quantity}" if kind in pooled else r.sensor_id)
    return out


def _floored(calibrated: CalibratedDetector, normal: Array) -> CalibratedDetector:
    """The threshold raised, if need be, to the highest smoothed score of the training rows themselves.

    The held-back rows are the newest stretch of normal operation; where the twin has a daily
    cycle they can be quieter than the rows the detector was fit on (water's and a short banking
    run's held-back rows are a night), and a threshold taken from them sits below the scores of
    the very rows the model learnt as normal: a fresh twin then raised a verdict from its third
    row on (the twin's first rows, a start-up transient, are among the highest-scoring training
    rows). A row the detector was trained on is normal by definition, so no such row may score
    over the threshold; where the held-back rows are the livelier ones (the usual case: training
    scores are optimistic), nothing changes.
    """
    smoothed = calibrated.score(normal)
    floor = float(smoothed[:calibrated.n_train].max())
    if floor <= calibrated.threshold:
        return calibrated
    held = smoothed[calibrated.n_train:]
    return replace(calibrated, threshold=floor, holdout_far=float(np.mean(held > floor)) if len(held) else 0.0)


def _sklearn_version() -> str:
    """The installed scikit-learn's version, without importing it (that takes seconds)."""
    return importlib.metadata.version("scikit-learn")


def model_path(home: Path, sector: Sector | str) -> Path:
    """Where a sector's model lives: `<home>/models/<sector>.joblib` (sidecar: `<sector>.json`)."""
    return Path(home) / "models" / f"{parse_sector(sector).value}.joblib"


def sidecar_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def save_model(model: SectorModel, path: Path) -> Path:
    """Write the pickle, then its sidecar, each atomically (tmp + fsync + rename); returns `path`."""
    path = Path(path)
    buf = io.BytesIO()
    import joblib

    joblib.dump(model, buf)
    blob = buf.getvalue()
    meta = model.sidecar() | {"sha256": hashlib.sha256(blob).hexdigest(), "file": path.name}
    _atomic_write(path, blob)
    _atomic_write(sidecar_path(path), (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return path


def read_sidecar(path: Path) -> dict[str, Any]:
    """A saved model's sidecar, checked for shape; raises ModelError."""
    side = sidecar_path(path)
    if not Path(path).is_file() or not side.is_file():
        raise ModelError(f"no trained model at {path}: run `qeaims detect train --sector {Path(path).stem}`")
    try:
        meta = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model sidecar {side} is unreadable: {exc}") from exc
    if not isinstance(meta, dict) or not {"format_version", "sector", "sha256", "sensors"} <= meta.keys():
        raise ModelError(f"model sidecar {side} lacks format_version, sector, sensors or sha256")
    return meta


def load_model(path: Path, *, sector: Sector | str | None = None) -> SectorModel:
    """Load a model saved by `save_model`, verifying version, sector and sha256 before unpickling."""
    path = Path(path)
    meta = read_sidecar(path)
    retrain = f"retrain with `qeaims detect train --sector {meta['sector']} --force`"
    if meta["format_version"] != FORMAT_VERSION:
        raise ModelError(f"model {path} has format {meta['format_version']}, this build reads {FORMAT_VERSION}: {retrain}")
    if sector is not None and meta["sector"] != parse_sector(sector).value:
        raise ModelError(f"model {path} is for sector {meta['sector']!r}, not {parse_sector(sector).value!r}")
    if meta.get("sklearn") != _sklearn_version():
        raise ModelError(f"model {path} was saved with scikit-learn {meta.get('sklearn')}, "
                         f"this is {_sklearn_version()}: {retrain}")
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise ModelError(f"model {path} does not match the sha256 in its sidecar (corrupt or tampered): {retrain}")
    try:
        import joblib

        model = joblib.load(io.BytesIO(blob))
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError) as exc:
        raise ModelError(f"model {path} cannot be loaded ({type(exc).__name__}): {retrain}") from exc
    if not isinstance(model, SectorModel) or model.sector.value != meta["sector"] \
            or list(model.sensors) != list(meta["sensors"]):
        raise ModelError(f"model {path} does not match its sidecar: {retrain}")
    return model


def load_or_train(home: Path, sector: Sector | str, *, progress: Progress | None = None,
                  **train_kw: Any) -> SectorModel:
    """The saved model of `sector`; trained and saved first if there is none or it is of an older format.

    An older format is a model this build would train differently (format 1 had never seen rain,
    and isolated the CSO outfall in the first storm): it is regenerated from the twin, as a
    missing one is. A corrupt, tampered, foreign or *newer* model still raises.
    """
    path = model_path(home, sector)
    if (not path.exists() and not sidecar_path(path).exists()) or _outdated(path):
        save_model(train_sector(sector, progress=progress, **train_kw), path)
    return load_model(path, sector=sector)


def _outdated(path: Path) -> bool:
    try:
        version = read_sidecar(path)["format_version"]
    except ModelError:
        return False  # load_model says what is wrong with it
    return isinstance(version, int) and version < FORMAT_VERSION


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
