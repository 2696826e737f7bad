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

The stages live in their own modules: `oracles.training_data` collects normal operation,
this module fits and calibrates, `oracles.sector_model` is the result, `oracles.model_store`
keeps it on disk (a pickle checked against its sidecar before it is loaded). Their public names
are re-exported here, where callers have always found them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from core.messages import Reading, Sector
from oracles.detect.classify import value_grid
from oracles.detect.features import FirstPassCheck
from oracles.detect.models import make_detector
from oracles.detect.production import Calibration, DetectorConfig, fit_config
from oracles.model_store import _outdated, load_model, model_path, read_sidecar, save_model, sidecar_path
from oracles.sector_model import (
    EXPECTED_RUNNING,
    FORMAT_VERSION,
    STOPPED_SHARE,
    Array,
    ModelError,
    SectorModel,
)
from oracles.training_data import Drive, Inputs, Progress, collect_normal, increments, normal_twin
from sectors.plugin import TrainingPlan, by_sector
from sectors.runner import REPORT_PERIOD_S, TwinRunner, parse_sector

__all__ = [
    "EXPECTED_RUNNING",
    "FORMAT_VERSION",
    "PLANS",
    "STOPPED_SHARE",
    "Drive",
    "Inputs",
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


PLANS: Mapping[Sector, TrainingPlan] = by_sector(lambda p: p.training)
"""Each sector's training plan (``SectorPlugin.training``): how much normal operation, and why."""


def train_sector(sector: Sector | str, *, rows: int | None = None, seed: int = 0, detector: str | None = None,
                 target_far: float = Calibration.target_far, window: int | None = None, stride: int | None = None,
                 progress: Progress | None = None, runner: TwinRunner | None = None) -> SectorModel:
    """Train and calibrate a sector's model on normal operation (`PLANS` gives the defaults).

    `detector` names one (`oracles.detect.models.DETECTORS`); by default the plan's, and `window`
    (the scores' smoothing, in rows) by default the plan's `smoothing_rows`. Without
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
        done = k * n
        tick = None if progress is None else \
            (lambda i, _total, done=done: progress(done + i, n * len(seeds)))
        if k == 0 and runner is not None:
            drive = None if plan.inputs is None else plan.inputs(s, n, step, period_s)
            names, raw = collect_normal(runner, rows=n, stride=step, progress=tick, drive=drive)
        elif runner is not None:
            # the caller's twin stays open, and SWMM runs one engine per process: the other runs elsewhere
            names, raw = _collect_in_child(which, s, n, step)
        else:
            names, raw = _collect(which, s, n, step, tick)
        if k == 0:
            first = names
        elif [r.sensor_id for r in names] != [r.sensor_id for r in first]:
            raise ConfigError(f"the {which.value} twin reported other sensors on seed {s}")
        raws.append(raw)
    return fit_model(which, first, np.vstack(raws), seed=seed, detector=detector, target_far=target_far,
                     window=plan.smoothing_rows if window is None else window, stride=step)


def _collect(sector: Sector, seed: int, rows: int, stride: int,
             progress: Progress | None = None) -> tuple[list[Reading], Array]:
    """One run of normal operation on a fresh twin of `seed`, driven by the plan's inputs."""
    plan = PLANS[sector]
    drive = None if plan.inputs is None else plan.inputs(seed, rows, stride, REPORT_PERIOD_S[sector])
    with normal_twin(sector, seed=seed) as own:
        return collect_normal(own, rows=rows, stride=stride, progress=progress, drive=drive)


def _collect_in_child(sector: Sector, seed: int, rows: int, stride: int) -> tuple[list[Reading], Array]:
    """`_collect` in a child process: for a run made while the caller holds a twin of its own open."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_collect, sector, seed, rows, stride).result()


def fit_model(sector: Sector | str, first: Sequence[Reading], raw: Array, *, seed: int = 0, detector: str | None = None,
              target_far: float = Calibration.target_far, window: int = Calibration.window, stride: int = 1) -> SectorModel:
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
            normal, groups=groups, stride=step)
        chosen = detector if detector is not None else plan.detector
        options = plan.detector_options if detector is None else {}
        det = make_detector(chosen, **options) if isinstance(chosen, str) else chosen()
        config = DetectorConfig(det.name, options, Calibration(target_far=target_far, window=window,
                                                               margin=plan.threshold_margin))
        calibrated = fit_config(normal, config, det, stride=step)
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
