"""Trained models kept once per machine, so a new data directory does not train the city again.

Training the six sector models costs about a minute on two cores, and it is the same minute every
time: a model is a function of the sector's twin, its training plan and the code that trains it,
not of the data directory. `qeaims up` in a fresh ``--home`` (a test, a second city, a reinstall)
therefore copies a model from the machine cache when one was trained by the same code, and trains
(and caches) it otherwise.

"The same code" is a fingerprint: the model format, the scikit-learn version, and the sha256 of
every source file that decides what a sector's model is (the sector's plug-in package, the twin
base, the training, detection and model modules). Any edit to them is a new fingerprint, so a cache
can go stale only by being wrong on disk, and a copied model is verified like any other
(`oracles.model_store.load_model`: sidecar, sha256, sector, sensors) before it is used.

Where: ``$QEAIMS_MODEL_CACHE`` if set (``off`` disables the cache), else
``$XDG_CACHE_HOME/qeaims/models`` or ``~/.cache/qeaims/models``, created 0700. The cache holds
pickles, so it deserves the protection of ``<home>/models`` itself: it is the user's own directory.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from core.messages import Sector
from oracles.model_store import _atomic_write, load_model, model_path, sidecar_path
from oracles.sector_model import FORMAT_VERSION, ModelError, _sklearn_version

__all__ = ["cache_dir", "fetch", "fingerprint", "store"]

_ROOT = Path(__file__).resolve().parent.parent
_SHARED_SOURCES = ("sectors/_twin.py", "sectors/plugin.py", "sectors/runner.py", "oracles/training.py",
                   "oracles/training_data.py", "oracles/sector_model.py", "oracles/detect")


def cache_dir() -> Path | None:
    """The machine's model cache, or None when ``QEAIMS_MODEL_CACHE=off``."""
    chosen = os.environ.get("QEAIMS_MODEL_CACHE", "").strip()
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "qeaims" / "models"


def _files(sector: Sector) -> list[Path]:
    own = _ROOT / "sectors" / sector.value
    paths = [own] if own.is_dir() else []
    paths += [_ROOT / p for p in _SHARED_SOURCES]
    out: list[Path] = []
    for path in paths:
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [p for p in out if p.is_file()]


def fingerprint(sector: Sector) -> str:
    """What a model of `sector` depends on, as a short hex digest (format, scikit-learn, sources)."""
    digest = hashlib.sha256(f"format {FORMAT_VERSION}\nsklearn {_sklearn_version()}\n".encode())
    for path in _files(sector):
        digest.update(os.path.relpath(path, _ROOT).encode() + b"\n")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


def _cached(sector: Sector) -> Path | None:
    root = cache_dir()
    return None if root is None else root / fingerprint(sector) / f"{sector.value}.joblib"


def fetch(home: Path, sector: Sector) -> bool:
    """Copy the cached model of `sector` into `home` if the cache has one of this code; True if it did."""
    cached = _cached(sector)
    if cached is None or not cached.is_file() or not sidecar_path(cached).is_file():
        return False
    try:
        load_model(cached, sector=sector)  # verified before it is trusted with a home
    except ModelError:
        return False
    _copy_model(cached, model_path(home, sector))
    return True


def store(home: Path, sector: Sector) -> None:
    """Keep `home`'s freshly trained model of `sector` in the cache (best effort: a full disk only costs time)."""
    cached = _cached(sector)
    source = model_path(home, sector)
    if cached is None or not source.is_file():
        return
    try:
        _copy_model(source, cached)
    except OSError:
        return


def _copy_model(source: Path, target: Path) -> None:
    """The pickle, then its sidecar, each written as `save_model` writes them (tmp + fsync + rename)."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for src, dst in ((source, target), (sidecar_path(source), sidecar_path(target))):
        _atomic_write(dst, src.read_bytes())
