"""Normal weather for the sewage twin: dry spells and rain episodes up to storm intensity.

Rain is an input the sewer receives, not something that breaks in it: a combined sewer is built
to take a storm, and a CSO spilling in a cloudburst is the design working, not failing. So the
"normal operation" a sewage detector learns must contain rain — light showers, long steady rain,
cloudbursts that start abruptly at full intensity — and the dry days in between, when the wet
well cycles on sanitary flow alone. A model trained on dry weather only reads the first
storm as the largest anomaly it has ever seen (the rain gauge alone scored 10⁸× its threshold).

`rain_series` draws such weather: alternating dry spells (`DRY_H`) and episodes (`EPISODE_H`) made
of blocks (`BLOCK_MIN`) of constant intensity, each block's intensity drawn log-uniformly up to
`STORM_MM_H` around an episode mean, so an episode may be steady (a frontal rain), rising and
falling, or a cloudburst that starts at its peak (what `SimControl set-rain` does). The numbers
are a plausible temperate climate for a catchment of 30 ha, not a calibrated rainfall model; what
matters to a detector is that every intensity the twin will be asked to take, and every
transition between them, appears in normal operation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK_MIN", "DRY_H", "EPISODE_H", "STORM_MM_H", "rain_series"]

STORM_MM_H = 45.0
"""The heaviest rain of normal operation: a cloudburst (the storm-day scenario rains 25 mm/h)."""
DRY_H = (4.0, 30.0)
"""Length of a dry spell between two episodes, hours (uniform)."""
EPISODE_H = (0.5, 6.0)
"""Length of a rain episode, hours (uniform)."""
BLOCK_MIN = (15.0, 90.0)
"""Length of one block of constant intensity inside an episode, minutes (uniform)."""
_LIGHT_MM_H = 0.5


def rain_series(rng: np.random.Generator, duration_s: float, *, step_s: float, dry_start_h: float = 6.0) -> list[float]:
    """Rain intensity (mm/h) for each of the `duration_s / step_s` steps, starting with `dry_start_h` dry.

    The first hours are dry so a twin that starts with a full wet well and empty sewers settles on
    sanitary flow before the first rain, as it would in the field.
    """
    if step_s <= 0 or duration_s <= 0:
        raise ValueError("duration and step must be positive")
    steps = int(duration_s // step_s)
    out: list[float] = []
    dry = dry_start_h * 3600.0
    while len(out) < steps:
        out.extend([0.0] * max(round(dry / step_s), 0))
        episode = float(rng.uniform(*EPISODE_H)) * 3600.0
        # the episode's typical intensity, log-uniform from a drizzle to a cloudburst
        mean = float(np.exp(rng.uniform(np.log(_LIGHT_MM_H), np.log(STORM_MM_H))))
        steady = rng.random() < 0.4  # a frontal rain holds one intensity for the whole episode
        left = episode
        while left > 0:
            block = min(float(rng.uniform(*BLOCK_MIN)) * 60.0, left)
            level = mean if steady else mean * float(np.exp(rng.normal(0.0, 0.6)))
            out.extend([float(np.clip(level, _LIGHT_MM_H, STORM_MM_H))] * max(round(block / step_s), 1))
            left -= block
        dry = float(rng.uniform(*DRY_H)) * 3600.0
    return out[:steps]
