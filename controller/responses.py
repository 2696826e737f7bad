"""Per-sector responses of the controller: water, sewage, transportation, healthcare and banking
(and, through the same dispatcher, electricity's FLISR plans from ``controller.electricity``).

Each sector module (``_responses_<sector>.py``) has three functions of the twin and the faulted
asset (a twin asset id), each returning a :class:`~controller.plans.ResponsePlan`:

- ``isolate_plan``: take the asset out of service safely (water: close its valve segment; sewage:
  lock out the failed pump, start the standby, divert to the storm tank; transportation: close the
  incident link; healthcare: transfer to backup power or divert admissions; banking: fail over to
  the standby data centre, drain the failed ATM cluster);
- ``restore_plan``: bring service back around it (water: full pump speed when pressure sags;
  sewage: divert when the station cannot carry the flow; transportation: the signal retiming that
  leaves the fewest delayed trips on a trial copy; healthcare: refuel the generator);
- ``reintegrate_plan``: undo both after the repair (refused while the twin still reports the fault).

A plan only reads the twin; its commands act when the controller passes them to ``twin.apply``.
Nothing here touches the chain: the controller records the plan (``ResponsePlan.summary``) first.

:func:`plan_for` picks the function by sector and purpose. A wrong sector or purpose is a
``ConfigError``; an asset the twin does not have, or one no response acts on, is the twin's own
``UnknownAsset``/``InvalidCommand``; both are one readable line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, cast

from controller.plans import ResponsePlan
from core.errors import ConfigError
from core.messages import Sector
from sectors.plugin import RegisteredSectors, plugin_of
from sectors.runner import TwinRunner, parse_sector

from ._responses_common import PURPOSES

__all__ = ["PURPOSES", "SECTORS", "isolate_plan", "plan_for", "reintegrate_plan", "responder", "restore_plan"]

SECTORS: Sequence[Sector] = RegisteredSectors()
"""Every registered sector; each plug-in names its response module (``SectorPlugin.responses``)."""

Responder = Callable[[Any, str], ResponsePlan]


def _module(sector: Sector) -> ModuleType:
    """The sector's response module, imported on first use (each pulls in its twin's field library)."""
    return importlib.import_module(plugin_of(sector).responses)


def responder(sector: Sector | str, purpose: str) -> Responder:
    """The function that plans ``purpose`` in ``sector``."""
    which = parse_sector(sector)
    if purpose not in PURPOSES:
        raise ConfigError(f"unknown response purpose {purpose!r}: choose one of {', '.join(PURPOSES)}")
    return cast(Responder, getattr(_module(which), f"{purpose}_plan"))


def plan_for(sector: Sector | str, purpose: str, twin: object, target: str) -> ResponsePlan:
    """The ``purpose`` plan ("isolate", "restore", "reintegrate") of ``sector`` for ``target``.

    ``twin`` is the sector's twin object (a `sectors.runner.TwinRunner` is unwrapped)."""
    act = responder(sector, purpose)
    which = parse_sector(sector)
    if isinstance(twin, TwinRunner):
        twin = twin.twin
    where, _, name = plugin_of(which).twin_type.partition(":")
    expected: type = getattr(importlib.import_module(where), name)
    if not isinstance(twin, expected):
        raise ConfigError(f"{which.value} plans need a {expected.__name__} twin, not {type(twin).__name__}")
    return act(twin, target)


def _by_twin(purpose: str, twin: object, target: str) -> ResponsePlan:
    sector = getattr(twin, "sector", None)
    if sector is None:  # the water twin has no sector attribute
        sector = Sector.WATER if type(twin).__name__ == "WaterTwin" else None
    if not isinstance(sector, Sector):
        raise ConfigError(f"{type(twin).__name__} is not a sector twin this controller can plan for")
    return plan_for(sector, purpose, twin, target)


def isolate_plan(twin: object, target: str) -> ResponsePlan:
    """Take ``target`` out of service in ``twin``'s sector (see the module docstring)."""
    return _by_twin("isolate", twin, target)


def restore_plan(twin: object, target: str) -> ResponsePlan:
    """Bring service back around the isolated ``target``."""
    return _by_twin("restore", twin, target)


def reintegrate_plan(twin: object, target: str) -> ResponsePlan:
    """Undo the isolation and the restoration after ``target``'s repair."""
    return _by_twin("reintegrate", twin, target)
