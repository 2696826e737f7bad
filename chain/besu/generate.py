"""`qeaims network generate`: every file a Besu QBFT consortium needs, written all at once or not at all.

Validators belong to sector operators in turn: validator i (0-based) to ``sectors[i % len(sectors)]``,
so with as many validators as sectors each operator runs one. With more validators than sectors the
first operators run two, and one operator's outage then costs two of the f the network tolerates
(``notes`` says so); with fewer, the operators past N run no validator and their sector's services
use validator ``j % N``. Keys are random (`secrets.token_bytes`); `generate_network` takes another
source only so a test can check that the same keys give the same files.

Everything is rendered into a hidden sibling directory and renamed into place, so a failure leaves
no half-written network; bad input is refused before anything is written.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chain.besu.accounts import AllowedAccount, planned_accounts
from chain.besu.compose import DEFAULT_BESU_IMAGE, compose_document, default_hosts
from chain.besu.genesis import QbftParams, genesis_document
from chain.besu.nodefiles import P2P_PORT, RPC_PORT, node_config, permissions_config, static_nodes
from chain.besu.nodekeys import Entropy, NodeKey, new_node_key
from chain.besu.readme import readme_text
from chain.consortium import ORACLES_PER_SECTOR, sectors
from core.config import Settings
from core.errors import ConfigError

__all__ = ["ALLOC_WEI", "MIN_VALIDATORS", "GeneratedNetwork", "NetworkSpec", "Validator", "generate_network",
           "validator_of"]

MIN_VALIDATORS = 4
"""QBFT tolerates f faulty validators of n ≥ 3f + 1: four is the fewest that survive one (Besu: "QBFT
requires four validators to be Byzantine fault tolerant")."""
MAX_VALIDATORS = 100
ALLOC_WEI = 10**24
"""Genesis balance of every allowlisted account. Gas is free on this chain (zero base fee, min gas
price 0) but QEAIMS's client offers a 1 gwei tip per gas (`ChainClient._current_gas_price`), and a
sender must hold the upfront cost, so each account gets a balance; tips go to the validators and
nothing is burnt at a zero base fee."""
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_IMAGE = re.compile(r"^[a-z0-9./_-]+:[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class NetworkSpec:
    """What the operator asked for (validated by `check`)."""

    validators: int
    sectors: tuple[str, ...]
    params: QbftParams
    besu_image: str = DEFAULT_BESU_IMAGE
    hosts: tuple[str, ...] = ()  # one per validator; empty = the Compose network's fixed addresses

    def check(self) -> None:
        if not MIN_VALIDATORS <= self.validators <= MAX_VALIDATORS:
            raise ConfigError(f"{self.validators} validators: QBFT needs at least {MIN_VALIDATORS} to survive one "
                              f"faulty validator (n >= 3f + 1 with f >= 1), and this generator makes at most "
                              f"{MAX_VALIDATORS}")
        if not self.sectors:
            raise ConfigError("name at least one sector (--sectors electricity,water,...)")
        known = sectors()
        for name in self.sectors:
            if name not in known:
                raise ConfigError(f"unknown sector {name!r}: choose from {', '.join(known)}")
        if len(set(self.sectors)) != len(self.sectors):
            raise ConfigError("a sector is named twice in --sectors")
        if not _IMAGE.match(self.besu_image) or self.besu_image.endswith(":latest"):
            raise ConfigError(f"--besu-image {self.besu_image!r}: give a pinned tag, e.g. {DEFAULT_BESU_IMAGE}")
        if self.hosts:
            if len(self.hosts) != self.validators:
                raise ConfigError(f"--hosts names {len(self.hosts)} hosts for {self.validators} validators")
            for host in self.hosts:
                if not _HOST.match(host):
                    raise ConfigError(f"--hosts: {host!r} is not a host name or IP address")
            if len(set(self.hosts)) != len(self.hosts):
                raise ConfigError("--hosts: each validator needs a host of its own (they share ports)")


@dataclass(frozen=True)
class Validator:
    name: str  # validator-1, ...
    operator_sector: str  # the sector whose operator runs it
    key: NodeKey
    host: str

    @property
    def enode(self) -> str:
        return self.key.enode(self.host, P2P_PORT)


@dataclass(frozen=True)
class GeneratedNetwork:
    out: Path
    validators: list[Validator]
    accounts: list[AllowedAccount]
    deployer: str
    notes: list[str] = field(default_factory=list)


def validator_of(sector_index: int, validators: int) -> int:
    """The validator (0-based) whose RPC a sector's services use: its operator's first one."""
    return sector_index % validators


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"--out {out} exists and is not empty: choose a new folder (generated keys are never "
                          "overwritten)")


def _write(root: Path, relative: str, text: str, *, private: bool = False) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if private:
        os.chmod(path, 0o600)


def _render(root: Path, spec: NetworkSpec, validators: Sequence[Validator], accounts: Sequence[AllowedAccount],
            deployer: NodeKey, compose: bool) -> None:
    enodes = [v.enode for v in validators]
    addresses = [a.address for a in accounts]
    genesis = genesis_document(spec.params, [v.key.address for v in validators], dict.fromkeys(addresses, ALLOC_WEI))
    _write(root, "genesis.json", json.dumps(genesis, indent=2) + "\n")
    _write(root, "permissions_config.toml", permissions_config(enodes, addresses))
    _write(root, "static-nodes.json", static_nodes(enodes))
    for v in validators:
        _write(root, f"{v.name}/key", v.key.key_file(), private=True)
        _write(root, f"{v.name}/key.pub", v.key.pub_file())
        _write(root, f"{v.name}/address", v.key.address + "\n")
        (root / v.name / "data").mkdir()  # the node's database (its data path)
        _write(root, f"{v.name}/config.toml", node_config(
            identity=f"{v.name}-{v.operator_sector}", host=v.host, gas_limit=spec.params.gas_limit,
            dns=not _is_ip(v.host)))
    _write(root, "deployer/key", deployer.key_file(), private=True)
    _write(root, "deployer/address", deployer.address + "\n")
    listing: list[dict[str, Any]] = [
        {"name": v.name, "operator_sector": v.operator_sector, "address": v.key.address,
         "public_key": v.key.pub_file(), "enode": v.enode, "rpc_url": f"http://{v.host}:{RPC_PORT}"}
        for v in validators]
    _write(root, "validators.json", json.dumps(listing, indent=2) + "\n")
    _write(root, "accounts.json", json.dumps([asdict(a) for a in accounts], indent=2) + "\n")
    if compose:
        services = [(s, validator_of(j, len(validators))) for j, s in enumerate(spec.sectors)]
        document = compose_document(validators=[(v.name, v.host) for v in validators], image=spec.besu_image,
                                    services=services, oracles_per_sector=ORACLES_PER_SECTOR)
        _write(root, "docker-compose.yml", yaml.safe_dump(document, sort_keys=False, width=120))
    _write(root, "README.md", readme_text(
        spec.params, [(v.name, v.operator_sector, v.key.address, v.host) for v in validators],
        besu_image=spec.besu_image, compose=compose))


def generate_network(settings: Settings, spec: NetworkSpec, out: Path, *,
                     entropy: Entropy = secrets.token_bytes) -> GeneratedNetwork:
    """Check the request, make the keys, read or create the members' keystores, write ``out``."""
    spec.check()
    out = out.expanduser().resolve()
    _check_out(out)
    hosts = list(spec.hosts) or default_hosts(spec.validators)
    validators = [Validator(f"validator-{i + 1}", spec.sectors[i % len(spec.sectors)], new_node_key(entropy), hosts[i])
                  for i in range(spec.validators)]
    deployer = new_node_key(entropy)
    accounts = planned_accounts(settings, deployer.address)
    notes: list[str] = []
    if spec.validators > len(spec.sectors):
        notes.append(f"{spec.validators} validators for {len(spec.sectors)} sector operators: some operators run "
                     "two, and losing such an operator costs two validators")
    if spec.validators < len(spec.sectors):
        notes.append(f"only {spec.validators} of the {len(spec.sectors)} sector operators run a validator")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        _render(staging, spec, validators, accounts, deployer, compose=not spec.hosts)
        if out.is_dir():
            out.rmdir()  # empty (checked above); rename cannot replace a directory
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return GeneratedNetwork(out, validators, accounts, deployer.address, notes)
