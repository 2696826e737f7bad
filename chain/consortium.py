"""The development consortium `qeaims deploy` creates: every registered sector (`core.sectors`), its
operator, four oracles each, one governor per sector, and the infrastructure nodes each sector's
plug-in lists, with their dependencies.

Real deployments register their own members through `qeaims gov propose`; this is the city the
demo and the tests run on. Node ids are short ASCII names (they are `bytes32` on-chain).
"""

from __future__ import annotations

import hashlib
from typing import Any

from core.sectors import CONTROL_SECTOR, VAULT_PREFIX, DevNode, plugin, registered

__all__ = ["CONTROL_OPERATOR", "CONTROL_SECTOR", "ORACLES_PER_SECTOR", "DevNode",
           "nodes", "operators", "sectors", "vault_sector"]

ORACLES_PER_SECTOR = 4

# The self-healing controller signs its own steps (plan, isolation applied, repair, reintegration):
# it is the only member of a sector of its own, so it can record events but never vote on a
# utility's isolation, and it holds REPAIR_ROLE on the quorum to move an isolated node to repair.
CONTROL_OPERATOR = "city-control"


def vault_sector(sector: str) -> str:
    """The on-chain sector, and operator, of ``sector``'s vault recorder: ``vault-<sector>``, or for a name too
    long for 32 bytes ``vault-`` and the first 26 hex digits of the name's SHA-256.

    One sector per vault, holding one member and no node: the recorder can record events, can never
    vote on or count in any utility's quorum, and no other vault's recorder can vote on it either (a
    sector of one is below the quorum's active floor, and nobody votes in a sector not their own;
    with all recorders in one sector, four of six made a quorum that could quarantine a fifth and so
    shut its vault). An auditor knows which recorder answers for which vault by its sector."""
    name = f"{VAULT_PREFIX}{sector}"
    if len(name.encode()) > 32:
        name = VAULT_PREFIX + hashlib.sha256(sector.encode()).hexdigest()[:32 - len(VAULT_PREFIX)]
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
