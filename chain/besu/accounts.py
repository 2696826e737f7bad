"""Who may send transactions on the consortium chain: the accounts allowlist, two ways.

1. `planned_accounts`, before the chain exists: the deployer plus every member identity in the
   QEAIMS home (`chain.deploy.member_identities`: each sector's governor and oracles, the
   controller ``city-control``, each vault's recorder), exactly the accounts `qeaims deploy`
   registers and the running stack signs with.
2. `registry_accounts`, from the live chain: every oracle the Registry has registered and not
   removed (the controller and the vaults' recorders are registered oracles of their own sectors)
   plus the council's current governors. Governance (a council proposal that registers or removes
   an oracle, adds or removes a governor) changes this list; `qeaims network allowlist` writes it
   for `perm_reloadPermissionsFromFile`.

A quarantined oracle stays on the list: quarantine is the quorum's automatic and reversible act, and
the council that reinstates it should not also have to reconfigure every node. A removed oracle
leaves it. The deployer is on the first list (it deploys) and on the second only when asked: after
the deploy it renounces every role, and the doc says to drop it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eth_utils.address import to_checksum_address

from chain.client import ChainClient
from chain.consortium import CONTROL_OPERATOR, ORACLES_PER_SECTOR, sectors
from chain.deploy import (
    controller_keystore,
    governor_keystore,
    member_identities,
    oracle_keystore,
    vault_recorder_keystore,
)
from chain.manifest import Deployment
from core.config import Settings
from keys.keystore import read_keystore_header

__all__ = ["LOG_CHUNK", "AllowedAccount", "planned_accounts", "registry_accounts"]

LOG_CHUNK = 1_000
"""Blocks per eth_getLogs request: within any ``--rpc-max-logs-range`` a node may have (5,000 by default
since Besu 23.1.2, 1,000 before), whatever the generated config says."""

_REMOVED = 3  # IRegistry.OracleStatus.Removed


@dataclass(frozen=True, order=True)
class AllowedAccount:
    """One allowlisted account and why it is there."""

    address: str
    role: str  # deployer | governor | oracle | controller | vault-recorder
    sector: str = ""  # the sector it acts for ("" for the deployer and the controller)
    index: int = 0  # an oracle's 1-based index in its sector


def _member_keystores(settings: Settings) -> list[tuple[Path, str, str, int]]:
    """(keystore, role, sector, index) of every member `qeaims deploy` registers."""
    out = [(governor_keystore(settings, s), "governor", s, 0) for s in sectors()]
    out += [(oracle_keystore(settings, s, i), "oracle", s, i) for s in sectors() for i in range(1, ORACLES_PER_SECTOR + 1)]
    out.append((controller_keystore(settings), "controller", "", 0))
    out += [(vault_recorder_keystore(settings, s), "vault-recorder", s, 0) for s in sectors()]
    return out


def planned_accounts(settings: Settings, deployer: str) -> list[AllowedAccount]:
    """The deployer and every member identity in the QEAIMS home.

    Missing keystores are created as the deploy would create them (`member_identities`); existing ones
    are only read (their public header), never rewritten, so a home whose keys were rotated is left as
    it is."""
    members = _member_keystores(settings)
    if not all(path.is_file() for path, *_ in members):
        member_identities(settings)
    out = [AllowedAccount(to_checksum_address(deployer), "deployer")]
    out += [AllowedAccount(read_keystore_header(path).address, role, sector, index)
            for path, role, sector, index in members]
    return out


def _registered_oracles(client: ChainClient, deployment: Deployment,
                        progress: Callable[[int, int], None]) -> list[str]:
    """Every account an OracleRegistered log names (its first indexed topic), in chain order."""
    topic = "0x" + client.abi("Registry").topic("OracleRegistered").hex()
    head = int(client.rpc.call("eth_blockNumber"), 16)
    start = max(0, deployment.deployed_at_block - 64)  # the registrations come after the role hand-over
    seen: dict[str, None] = {}
    for lo in range(start, head + 1, LOG_CHUNK):
        hi = min(lo + LOG_CHUNK - 1, head)
        logs = client.rpc.call("eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(hi),
                                                "address": deployment.registry, "topics": [topic]}])
        for log in logs:
            seen[to_checksum_address("0x" + str(log["topics"][1])[-40:])] = None
        progress(hi - start + 1, head - start + 1)
    return list(seen)


def registry_accounts(client: ChainClient, deployment: Deployment, *, include_deployer: bool = False,
                      progress: Callable[[int, int], None] = lambda done, total: None) -> list[AllowedAccount]:
    """The allowlist as the chain has it now: registered, not removed oracles and current governors.

    Candidates come from the Registry's logs, their status from `Registry.oracle` at the head (so a
    removal, a reinstatement or a key rotation counts as the contract counts it)."""
    out: list[AllowedAccount] = []
    if include_deployer:
        out.append(AllowedAccount(to_checksum_address(deployment.deployer), "deployer"))
    for account in _registered_oracles(client, deployment, progress):
        record = client.call1("Registry", "oracle", account)
        sector_raw, status = bytes(record[0]), int(record[4])
        if status == _REMOVED:
            continue
        sector = sector_raw.rstrip(b"\x00").decode("ascii", errors="replace")
        operator = bytes(record[1]).rstrip(b"\x00").decode("ascii", errors="replace")
        if operator == CONTROL_OPERATOR:
            out.append(AllowedAccount(account, "controller"))
        elif sector.startswith("vault-"):
            out.append(AllowedAccount(account, "vault-recorder", sector.removeprefix("vault-")))
        else:
            out.append(AllowedAccount(account, "oracle", sector))
    out += [AllowedAccount(to_checksum_address(g), "governor")
            for g in client.call1("GovernanceCouncil", "governors")]
    return out
