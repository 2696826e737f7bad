"""A package's re-exported names, imported on first use (PEP 562).

Why: `qeaims` starts a process per command, and a package that re-exports its submodules' names
eagerly (`keys` pulls in eth_account, `chain.besu` requests) made every command pay for them
(tests/cli/test_cli_imports.py holds the line).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, sources: Mapping[str, str], namespace: dict[str, Any],
                 names: list[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` for `package`: each name of `sources` is taken from its submodule
    on first access and kept in the package's `namespace`, so later accesses skip the lookup."""

    def getattr_(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(names))

    return getattr_, dir_
