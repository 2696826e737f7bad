"""Lazy re-exports for the sector packages, so that reading a plug-in never loads a field library.

Every process that lists the sectors imports each sector's ``plugin`` module, and with it the
sector's package ``__init__``. If that ``__init__`` imported the twin, listing sectors would load
pandapower, wntr, SWMM and uxsim (seconds). Each ``__init__`` instead names its exports and the
module each comes from; the module loads on the first attribute access (PEP 562). Type checkers
see the real imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) when ``name`` is first read."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
