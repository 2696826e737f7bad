"""The detectors' names the `qeaims detect` help lists are the detectors there are."""

from __future__ import annotations

from oracles.detect.models import DETECTORS
from oracles.detector_names import DETECTOR_NAMES


def test_the_light_names_are_the_detectors_keys_in_order() -> None:
    assert tuple(DETECTORS) == DETECTOR_NAMES
