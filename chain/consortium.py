"""The development consortium `qeaims deploy` creates: every registered sector (`core.sectors`), its
operator, four oracles each, one governor per sector, and the infrastructure nodes each sector's
plug-in lists, with their dependencies.

Real deployments register their own members through `qeaims gov propose`; this is the city the
demo and the tests run on. Node ids are short ASCII names (they are `bytes32` on-chain).
"""

from __future__ import annotations

from typing import Any

from core.errors import ConfigError
from core.sectors import CONTROL_SECTOR, VAULT_SECTOR, DevNode, plugin, registered

__all__ = ["CONTROL_OPERATOR", "CONTROL_SECTOR", "ORACLES_PER_SECTOR", "VAULT_SECTOR", "DevNode",
           "nodes", "operators", "sectors", "vault_operator"]

ORACLES_PER_SECTOR = 4

# The self-healing controller signs its own steps (plan, isolation applied, repair, reintegration):
# it is the only member of a sector of its own, so it can record events but never vote on a
# utility's isolation, and it holds REPAIR_ROLE on the quorum to move an isolated node to repair.
CONTROL_OPERATOR = "city-control"


def vault_operator(sector: str) -> str:
    """The on-chain operator of ``sector``'s vault recorder, in the `VAULT_SECTOR`: one operator per
    vault, so an auditor knows which recorder answers for which vault (a recorder's events about
    another vault count for nothing) and no vault's recorder counts in any utility's quorum."""
    name = f"vault-{sector}"
    if len(name) > 32:
        raise ConfigError(f"sector {sector!r} is too long for its vault's operator id {name!r} (32 bytes at most)")
    return name


def sectors() -> tuple[str, ...]:
    """The registered sectors' names, built-ins first (read when called: a sector registered later counts)."""
    return tuple(s.value for s in registered())


def operators() -> dict[str, str]:
    """Each sector's operator name."""
    return {name: plugin(name).operator for name in sectors()}


def nodes() -> tuple[DevNode, ...]:
    """Every registered sector's nodes."""
    return tuple(n for name in sectors() for n in plugin(name).nodes)


def __getattr__(name: str) -> Any:
    """``SECTORS``, ``OPERATORS`` and ``NODES`` as they are now (constants in the six-sector days)."""
    if name == "SECTORS":
        return sectors()
    if name == "OPERATORS":
        return operators()
    if name == "NODES":
        return nodes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
