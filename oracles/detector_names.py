"""The detectors' command-line names, without the detectors.

`oracles.detect.models.DETECTORS` maps these names to classes whose modules load numpy, pandas and
scikit-learn. The `qeaims detect` options list the names in their help text, which every `qeaims`
command builds when it starts (typer defines all sub-commands), so the names live here, where
importing them costs nothing; a test keeps them equal to `DETECTORS`' keys.
"""

from __future__ import annotations

__all__ = ["DETECTOR_NAMES"]

DETECTOR_NAMES: tuple[str, ...] = ("pca", "pca-drift", "mset", "iforest")
"""`oracles.detect.models.DETECTORS`' keys, in its order."""
