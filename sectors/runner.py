"""One way to drive any sector twin: open it by sector name (its plug-in), advance its clock, read its sensors.

The twins grew from their field libraries and step differently (water solves `step(dt_s)` periods
of its hydraulics, the others `advance(seconds)`; some take a seed, sewage cannot: SWMM is
deterministic). The publisher, the model trainer and the scenarios only need "advance by this much
and give me what the sensors report", so this adapter is where those differences end.

`REPORT_PERIOD_S` is each sector's natural sensor period: how often its field devices would report
and how far one `advance()` moves the clock by default. It is also the row period the sector's
detection model is trained on (`oracles.training`), so online rows look like training rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from core.errors import ConfigError
from core.messages import Reading, Sector
from sectors.plugin import by_sector, plugin_of

__all__ = ["REPORT_PERIOD_S", "TwinRunner", "open_twin", "parse_sector"]

REPORT_PERIOD_S: Mapping[Sector, int] = by_sector(lambda p: p.report_period_s)
"""Each registered sector's report period (its plug-in's ``report_period_s``)."""


def _start(start: datetime | None) -> datetime | None:
    if start is not None and start.tzinfo is None:
        raise ConfigError("a twin's start time must carry a UTC offset")
    return start


def parse_sector(name: str | Sector) -> Sector:
    """A sector by name, with the valid names in the error."""
    try:
        return Sector(name)
    except ValueError:
        raise ConfigError(f"unknown sector {name!r}: choose one of {', '.join(s.value for s in Sector)}") from None


@dataclass
class TwinRunner:
    """A twin with one stepping interface; `twin` is the sector's own object for faults and actuators."""

    sector: Sector
    twin: Any
    period_s: int

    def advance(self, seconds: float | None = None) -> list[Reading]:
        """Move the clock `seconds` (default: one report period) and return what the sensors report."""
        dt = self.period_s if seconds is None else seconds
        if dt <= 0:
            raise ConfigError(f"a twin's clock only moves forward, got {dt} s")
        advance = getattr(self.twin, "advance", None)
        if advance is None:  # wntr's stepwise hydraulics: whole seconds (`WaterTwin.step`)
            return list(self.twin.step(int(dt)))
        return list(advance(float(dt)))

    @property
    def now(self) -> datetime:
        value: datetime = self.twin.now
        return value

    def readings(self) -> list[Reading]:
        """What the sensors report now (attacks applied), without moving the clock."""
        return list(self.twin.readings())

    def close(self) -> None:
        close = getattr(self.twin, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_twin(sector: Sector | str, *, seed: int = 0, start: datetime | None = None,
              period_s: int | None = None) -> TwinRunner:
    """A fresh twin of `sector` (sewage: one per process, SWMM allows one open run)."""
    which = parse_sector(sector)
    period = REPORT_PERIOD_S[which] if period_s is None else period_s
    if period <= 0:
        raise ConfigError(f"report period must be positive, got {period} s")
    return TwinRunner(which, plugin_of(which).open_twin(seed, _start(start)), period)
