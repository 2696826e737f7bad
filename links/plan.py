"""Which SAEs are linked, over how much fibre, and which MQTT topics each direction of a link carries.

A *link* joins exactly two SAEs (secure application entities, the ETSI GS QKD 014 term for a
program that consumes keys): a master, which asks the KME for keys (``enc_keys``) and starts every
session, and a slave, which fetches the same keys by id (``dec_keys``). Every link is a QKD link of
its own (a fibre between the two sites, with its own simulated BB84 pair) and a hybrid channel of
its own.

Why pairwise, not one group key per sector: the four oracles of a sector are run by different
operators and the quorum exists because one of them may lie. With a key shared by the group, any
holder could forge a reading that the others accept as the field's. With one link per
(field gateway, oracle) pair, each oracle knows its readings came from the gateway. The price is one
ciphertext per receiver per message; a gateway batch is one message per report period, so a sector
costs five messages a period instead of one.

The city's plan (`city_plan`): for each sector S, its field gateway (``twin-S``, the twin in the
development city) is the master of a link to each of the sector's oracles (``oracle-S-i``), to the
controller (``controller``), to the operations desk (``operations``, the scenario runner and an
operator's console) and to the dashboard (``dashboard``, the API's public status page). Directions carry::

    twin-S → oracle-S-i   qeaims/S/+/+ (readings)
    twin-S → controller   qeaims/S/+/+, qeaims-svc/S, qeaims-ack/S
    controller → twin-S   qeaims-cmd/S, qeaims-sim/S
    twin-S → operations   qeaims-svc/S, qeaims-ack/S
    operations → twin-S   qeaims-sim/S
    twin-S → dashboard    qeaims-svc/S

The dashboard has a link of its own rather than sharing the operations desk's: one process at a time
holds an SAE's links (each key is consumed once), and the API runs all the time, beside the scenario
runner. It hears service levels only, and sends nothing back.

The plan is written once by `qeaims up` to ``<home>/links/plan.json`` and read by the KME and by
every endpoint, so all agree on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError

__all__ = [
    "CONTROLLER_SAE",
    "DASHBOARD_SAE",
    "OPERATIONS_SAE",
    "LinkPlan",
    "LinkSpec",
    "city_plan",
    "link_id_for",
    "oracle_sae",
    "twin_sae",
]

CONTROLLER_SAE = "controller"
OPERATIONS_SAE = "operations"
DASHBOARD_SAE = "dashboard"
SAE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # a topic level, a TLS common name, a URL path segment
LINK_SEPARATOR = "~"


def twin_sae(sector: str) -> str:
    return f"twin-{sector}"


def oracle_sae(sector: str, index: int) -> str:
    return f"oracle-{sector}-{index}"


def link_id_for(master: str, slave: str) -> str:
    return f"{master}{LINK_SEPARATOR}{slave}"


def _sae(value: str) -> str:
    if not SAE_ID.match(value):
        raise ValueError(f"an SAE id is 1-64 characters of a-z, 0-9 and '-', starting alphanumeric: {value!r}")
    return value


class LinkSpec(BaseModel):
    """One link: its two SAEs, its fibre, and the topic filters each direction carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    master: str
    slave: str
    distance_km: float = Field(ge=0.0, le=400.0)
    master_to_slave: tuple[str, ...] = ()
    slave_to_master: tuple[str, ...] = ()

    @field_validator("master", "slave")
    @classmethod
    def _valid_sae(cls, value: str) -> str:
        return _sae(value)

    @model_validator(mode="after")
    def _two_ends(self) -> Self:
        if self.master == self.slave:
            raise ValueError(f"a link joins two different SAEs, not {self.master!r} to itself")
        return self

    @property
    def link_id(self) -> str:
        return link_id_for(self.master, self.slave)

    def peer_of(self, sae_id: str) -> str:
        if sae_id == self.master:
            return self.slave
        if sae_id == self.slave:
            return self.master
        raise ConfigError(f"{sae_id!r} is not an end of link {self.link_id}")

    def carries_from(self, sae_id: str) -> tuple[str, ...]:
        """The topic filters `sae_id` sends on this link."""
        return self.master_to_slave if sae_id == self.master else self.slave_to_master if sae_id == self.slave else ()


class LinkPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    links: tuple[LinkSpec, ...] = ()
    kme_url: str = "https://127.0.0.1:8443"

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[frozenset[str]] = set()
        for link in self.links:
            pair = frozenset((link.master, link.slave))
            if pair in seen:
                raise ValueError(f"two links join {link.master} and {link.slave}")
            seen.add(pair)
        return self

    def get(self, link_id: str) -> LinkSpec:
        for link in self.links:
            if link.link_id == link_id:
                return link
        raise ConfigError(f"no link {link_id!r} in the plan")

    def between(self, a: str, b: str) -> LinkSpec | None:
        for link in self.links:
            if {link.master, link.slave} == {a, b}:
                return link
        return None

    def for_sae(self, sae_id: str) -> list[LinkSpec]:
        return [link for link in self.links if sae_id in (link.master, link.slave)]

    def saes(self) -> list[str]:
        return sorted({s for link in self.links for s in (link.master, link.slave)})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LinkPlan:
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise ConfigError(f"no link plan at {path}: `qeaims up` writes one (or `qeaims link setup`)") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"link plan {path}: {where}: {first['msg']}") from None


def city_plan(sectors: Iterable[str], *, oracles_per_sector: int, kme_url: str = "https://127.0.0.1:8443",
              operations: bool = True, oracle_km: Sequence[float] = (12.0, 27.0, 41.0, 55.0),
              controller_km: float = 18.0, operations_km: float = 6.0) -> LinkPlan:
    """The development city's links (module docstring); fibre lengths are the defaults' sites'. The
    dashboard sits at the operations desk's site, and comes and goes with it (`operations`)."""
    links: list[LinkSpec] = []
    for sector in sectors:
        twin = twin_sae(sector)
        readings, svc, ack = f"qeaims/{sector}/+/+", f"qeaims-svc/{sector}", f"qeaims-ack/{sector}"
        for index in range(1, oracles_per_sector + 1):
            km = oracle_km[(index - 1) % len(oracle_km)]
            links.append(LinkSpec(master=twin, slave=oracle_sae(sector, index), distance_km=km,
                                  master_to_slave=(readings,)))
        links.append(LinkSpec(master=twin, slave=CONTROLLER_SAE, distance_km=controller_km,
                              master_to_slave=(readings, svc, ack),
                              slave_to_master=(f"qeaims-cmd/{sector}", f"qeaims-sim/{sector}")))
        if operations:
            links.append(LinkSpec(master=twin, slave=OPERATIONS_SAE, distance_km=operations_km,
                                  master_to_slave=(svc, ack), slave_to_master=(f"qeaims-sim/{sector}",)))
            links.append(LinkSpec(master=twin, slave=DASHBOARD_SAE, distance_km=operations_km,
                                  master_to_slave=(svc,)))
    return LinkPlan(links=tuple(links), kme_url=kme_url)
