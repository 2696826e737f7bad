"""Detection models on disk: ``<home>/models/<sector>.joblib`` and its sidecar, checked before loading.

The file is a pickle (joblib), and unpickling runs code. So the sidecar `<sector>.json` holds the
format version, the sector, the sensors, the scikit-learn version and the pickle's sha256, and
`load_model` checks all of that *before* unpickling the verified bytes. The hash catches
corruption and mix-ups, not a forger who rewrites both files: protect `models/` like
`keystores/`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from core.messages import Sector
from oracles.sector_model import FORMAT_VERSION, ModelError, SectorModel, _sklearn_version
from sectors.runner import parse_sector

__all__ = ["load_model", "model_path", "read_sidecar", "save_model", "sidecar_path"]


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
