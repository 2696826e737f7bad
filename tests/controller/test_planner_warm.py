"""`TwinPlanner.warm` opens each sector's model once at the controller's start, and never stops it."""

from __future__ import annotations

from typing import Any

import pytest

from controller import planning
from controller.planning import TwinPlanner
from core.messages import Sector


def test_warm_opens_what_it_can_and_skips_what_it_cannot(monkeypatch: pytest.MonkeyPatch) -> None:
    real = planning.open_twin  # type: ignore[attr-defined]

    def flaky(sector: Any, **kw: Any) -> Any:
        if Sector(sector) is Sector.WATER:
            raise ImportError("wntr is not installed here")  # not a QeaimsError: warming must still go on
        return real(sector, **kw)

    monkeypatch.setattr(planning, "open_twin", flaky)
    took = TwinPlanner().warm([Sector.WATER, Sector.BANKING, Sector.SEWAGE])
    assert set(took) == {"banking", "sewage"} and all(t >= 0.0 for t in took.values())
