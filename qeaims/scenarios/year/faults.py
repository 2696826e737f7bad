"""The year's fault list: which assets can fail, how often, and a random draw of when.

Why a Poisson draw per asset: failures of distribution lines, water mains and data centres are
reported as rates per km or per site a year (`assumptions`), and with no ageing model a constant
rate is all those figures support. Rates scale with each asset's size where the source gives a
per-length rate (a feeder section's or a main's length, read from the twin's own network), and
``scale`` multiplies them all (``--faults-scale``) to stress the controller. The draw depends on the
seed only, so a run is repeatable.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.messages import FaultKind, Sector
from qeaims.scenarios.year import assumptions as A
from sectors.runner import open_twin

__all__ = ["SECTORS", "Asset", "Fault", "assets", "draw_faults"]

SECTORS: tuple[Sector, ...] = (Sector.ELECTRICITY, Sector.WATER, Sector.BANKING)
"""The sectors the year covers (the others are named as left out in docs/year.md)."""


@dataclass(frozen=True)
class Asset:
    sector: Sector
    asset_id: str  # a twin asset id (line-7, pipe:159, dc-primary)
    kind: FaultKind
    per_year: float  # failures a year at scale 1


@dataclass(frozen=True)
class Fault:
    asset: Asset
    at_s: float  # field seconds from the start of the year
    precursor: bool  # a degradation precedes it (the predictor can see it coming)

    @property
    def hour(self) -> int:
        """Hour of the day of the onset (the twin is evaluated at that hour of a representative day)."""
        return int(self.at_s // 3600) % 24


@functools.cache
def assets(sector: Sector) -> tuple[Asset, ...]:
    """Every asset of ``sector`` the year lets fail, with its failure rate (read from the twin)."""
    with open_twin(sector) as runner:
        twin = runner.twin
        if sector is Sector.ELECTRICITY:
            ties = {s.removeprefix("sw-") for s in twin.normally_open}
            return tuple(Asset(sector, f"line-{i + 1}", FaultKind.LINE_FAULT, A.LINE_FAULTS_PER_KM_YEAR * float(km))
                         for i, km in enumerate(twin.net.line.length_km) if str(i + 1) not in ties)
        if sector is Sector.WATER:
            wn = twin.wn
            return tuple(Asset(sector, f"pipe:{name}", FaultKind.PIPE_BREAK,
                               A.MAIN_BREAKS_PER_100KM_YEAR * wn.get_link(name).length / 100_000.0)
                         for name in wn.pipe_name_list)
        if sector is Sector.BANKING:
            spec = twin.spec
            dcs = (spec.primary.dc_id, spec.standby.dc_id)
            return (*(Asset(sector, dc, FaultKind.OUTAGE, A.DATA_CENTRE_OUTAGES_PER_YEAR) for dc in dcs),
                    *(Asset(sector, c.cluster_id, FaultKind.OUTAGE, A.ATM_CLUSTER_OUTAGES_PER_YEAR)
                      for c in spec.atm_clusters))
    raise ValueError(f"the year does not cover {sector.value}")


def draw_faults(sectors: Sequence[Sector], *, seed: int, scale: float,
                horizon_s: float = A.YEAR_H * 3600) -> list[Fault]:
    """The faults of one year, in time order: a Poisson count per asset, onsets uniform in the year.

    Each sector draws from its own stream, so a sector's year does not change with the others chosen."""
    out: list[Fault] = []
    for sector in dict.fromkeys(sectors):
        rng = np.random.default_rng([seed, 1, *sector.value.encode()])
        for asset in assets(sector):
            count = int(rng.poisson(asset.per_year * scale * horizon_s / (A.YEAR_H * 3600)))
            for at in rng.uniform(0.0, horizon_s, size=count):
                out.append(Fault(asset, float(at), bool(rng.random() < A.PRECURSOR_SHARE)))
    return sorted(out, key=lambda f: (f.at_s, f.asset.sector.value, f.asset.asset_id))
