"""Sectors as plug-ins: the `Sector` name type and the registry every layer looks sectors up in.

A sector (electricity, water, … or one a city adds later) is one package that registers a
`sectors.plugin.SectorPlugin`: its twin, its sensors' report period, which registered nodes its assets
belong to, how its detector is trained, which controller responses act on it, its crews' times and
its default faults. Nothing below the application names a sector's package: the city, the oracles,
the controller, the scenarios and the command's ``--sector`` choices all ask this registry.

How a plug-in is found (`discover`), in this order:

1. the ``qeaims.sectors`` entry-point group of the installed distributions (the six built-in sectors
   are declared in this project's ``pyproject.toml``; a utility's own package declares its own);
2. ``QEAIMS_SECTOR_PLUGINS``: comma-separated ``module:attribute`` references, for a plug-in that is
   on the path but not installed (child processes of ``qeaims up`` inherit it);
3. `register` called by code (a test, an embedding application).

`Sector` was a closed enum; it is now a validated name: ``Sector("water")`` is the same object as
``Sector.WATER``, ``Sector("gas")`` works once a gas plug-in is registered, and an unknown name is a
``ValueError`` naming the choices (pydantic reports it as a validation error at a process boundary).
This module imports nothing from the project but `core.errors`.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from core.errors import ConfigError, UnknownSector

__all__ = [
    "BUILTIN",
    "CONTROL_SECTOR",
    "DISTRICTS",
    "ENTRY_POINT_GROUP",
    "ENV_PLUGINS",
    "VAULT_PREFIX",
    "DevNode",
    "Plugin",
    "Sector",
    "discover",
    "plugin",
    "register",
    "registered",
    "unregister",
]

ENTRY_POINT_GROUP = "qeaims.sectors"
ENV_PLUGINS = "QEAIMS_SECTOR_PLUGINS"
BUILTIN = ("electricity", "water", "sewage", "healthcare", "transportation", "banking")
"""The six sectors this project ships, in the order the city lists them (their plug-ins are
``sectors.<name>.plugin:PLUGIN``, declared as entry points). Only the order and the `Sector`
constants come from here; everything a sector does comes from its plug-in."""

CONTROL_SECTOR = "control"
"""The self-healing controller's own on-chain sector (it records events, never votes): reserved."""

VAULT_PREFIX = "vault-"
"""Each sector's vault has a recorder in an on-chain sector of its own, ``vault-<sector>``
(`chain.consortium.vault_sector`, docs/cyber.md): names with this prefix are reserved."""

DISTRICTS = ("North-West", "North-East", "South-West", "South-East")
"""The city's districts as the public status page names them: the four quadrants of each sector's
map (the rule is `sectors.drawing.district_of`; each `DevNode.district` is one of these)."""

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}$")


@dataclass(frozen=True)
class DevNode:
    """A node of the development consortium: what `qeaims deploy` registers on-chain for a sector."""

    node: str
    sector: str
    kind: str
    criticality: int
    depends_on: tuple[str, ...] = ()
    district: str = ""
    """Where the node is, in plain words for the public (one of `DISTRICTS`; "" where a plug-in does
    not say). Registered nowhere on-chain: it is the dashboard's, read from the plug-in."""

    def __post_init__(self) -> None:
        if self.district and self.district not in DISTRICTS:
            raise ConfigError(f"node {self.node!r}: district {self.district!r} is not one of {', '.join(DISTRICTS)}")


class Plugin(Protocol):
    """What the layers below the sectors need of a plug-in (`sectors.plugin.SectorPlugin` is the whole
    interface): the chain layer registers its operator and nodes."""

    @property
    def name(self) -> str: ...

    @property
    def operator(self) -> str: ...

    @property
    def nodes(self) -> tuple[DevNode, ...]: ...


_lock = threading.RLock()
_plugins: dict[str, Plugin] = {}
_instances: dict[str, Sector] = {}
_discovered = False


class _SectorType(type):
    """Iterating `Sector` lists the registered sectors (built-ins first), as iterating the enum did."""

    def __iter__(cls) -> Iterator[Sector]:
        discover()
        names = [n for n in BUILTIN if n in _plugins] + sorted(n for n in _plugins if n not in BUILTIN)
        return iter([Sector(n) for n in names])

    def __len__(cls) -> int:
        return len(list(iter(cls)))


class Sector(str, metaclass=_SectorType):
    """A sector's name, checked against the registry; one object per name, so ``is`` compares."""

    __slots__ = ()
    ELECTRICITY: ClassVar[Sector]
    WATER: ClassVar[Sector]
    SEWAGE: ClassVar[Sector]
    HEALTHCARE: ClassVar[Sector]
    TRANSPORTATION: ClassVar[Sector]
    BANKING: ClassVar[Sector]

    def __new__(cls, value: str) -> Sector:  # noqa: PYI034 (one object per name: never a subclass)
        if isinstance(value, Sector):
            return value
        known = _instances.get(value)
        if known is not None:
            return known
        if isinstance(value, str) and value not in BUILTIN:
            try:
                discover()
            except ConfigError as exc:  # a broken plug-in reference: this name is not known, and why
                raise UnknownSector(f"{value!r} is not a sector ({exc})") from None
            if value in _plugins:
                return _intern(value)
        raise UnknownSector(f"{value!r} is not a sector: choose one of {', '.join(_names())}")

    @property
    def value(self) -> str:
        """The name (as the enum's ``.value`` was): what is hashed, stored and sent."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Sector({self.value!r})"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __reduce__(self) -> tuple[type[Sector], tuple[str]]:
        return (Sector, (self.value,))

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(), serialization=core_schema.to_string_ser_schema())


def _intern(name: str) -> Sector:
    with _lock:
        instance = _instances.get(name)
        if instance is None:
            instance = str.__new__(Sector, name)
            _instances[name] = instance
        return instance


for _name in BUILTIN:
    setattr(Sector, _name.upper(), _intern(_name))


def _names() -> list[str]:
    return [s.value for s in Sector]


def register(plugin: Plugin, *, replace: bool = False) -> Sector:
    """Add a sector; its name becomes a valid `Sector`. Registering the same object again is a no-op."""
    name = plugin.name
    if (not isinstance(name, str) or not _NAME.fullmatch(name) or name == CONTROL_SECTOR
            or name.startswith(VAULT_PREFIX)):
        raise ConfigError(f"a sector's name is 2-31 characters a-z, 0-9 and '-', starting with a letter, not "
                          f"{CONTROL_SECTOR!r} (the controller's) and not starting {VAULT_PREFIX!r} (the vaults'): "
                          f"{name!r}")
    strays = [n.node for n in plugin.nodes if not isinstance(n, DevNode) or n.sector != name]
    if strays or not isinstance(plugin.operator, str):
        raise ConfigError(f"sector plug-in {name!r} must list only its own nodes and name its operator"
                          + (f" (not its own: {', '.join(map(str, strays))})" if strays else ""))
    with _lock:
        present = _plugins.get(name)
        if present is not None and present is not plugin and not replace:
            raise ConfigError(f"sector {name!r} is already registered (by {type(present).__module__})")
        _plugins[name] = plugin
    return _intern(name)


def unregister(name: str) -> None:
    """Forget a registered sector that is not built in (tests that add one take it away again)."""
    if name in BUILTIN:
        raise ConfigError(f"{name!r} is a built-in sector")
    with _lock:
        _plugins.pop(name, None)
        _instances.pop(name, None)


def discover() -> None:
    """Load the entry-point and ``QEAIMS_SECTOR_PLUGINS`` plug-ins (once; later calls only add new env refs)."""
    global _discovered
    with _lock:
        refs: list[str] = []
        if not _discovered:
            refs += [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
        refs += [r.strip() for r in os.environ.get(ENV_PLUGINS, "").split(",") if r.strip()]
        loaded = [_load(ref) for ref in refs]  # all or nothing: one broken reference registers none
        fresh = [p for p in loaded if _plugins.get(p.name) is not p]
        for candidate in fresh:  # check every one before registering any
            if candidate.name in _plugins or sum(p.name == candidate.name for p in fresh) > 1:
                raise ConfigError(f"sector {candidate.name!r} is already registered "
                                  f"(by {type(_plugins.get(candidate.name, candidate)).__module__}); "
                                  "a plug-in never replaces another")
        for candidate in fresh:
            register(candidate)
        _discovered = True


def _load(ref: str) -> Plugin:
    module_name, _, attribute = ref.partition(":")
    try:
        found: Plugin = getattr(importlib.import_module(module_name), attribute or "PLUGIN")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"sector plug-in {ref!r} cannot be loaded: {exc}") from exc
    return found


def plugin(sector: Sector | str) -> Any:
    """The plug-in of a sector (typed `Any` here; `sectors.plugin.plugin_of` returns a `SectorPlugin`)."""
    found = _plugins.get(str(sector))
    if found is None:  # only a name not yet registered is worth a discovery (this is on the verdict path)
        discover()
        found = _plugins.get(str(sector))
    if found is None:
        raise UnknownSector(f"unknown sector {str(sector)!r}: choose one of {', '.join(_names())}")
    return found


def registered() -> tuple[Sector, ...]:
    """Every registered sector, built-ins first."""
    return tuple(Sector)
