"""Who may send transactions on the consortium chain: the accounts allowlist, two ways.

1. `planned_accounts`, before the chain exists: the deployer plus every member identity in the
   QEAIMS home (`chain.deploy.member_identities`: each sector's governor and oracles, the
   controller ``city-control``, each vault's recorder), exactly the accounts `qeaims deploy`
   registers and the running stack signs with.
2. `registry_accounts`, from the live chain: every oracle the Registry has registered and not
   removed (the controller and the vaults' recorders are registered oracles of their own sectors)
   plus the council's current governors, plus any other account holding the IsolationQuorum's
   REPAIR_ROLE (a repair dispatcher the council appointed). Governance (a council proposal that registers or removes
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
    REPAIR_ROLE,
    controller_keystore,
    governor_keystore,
    oracle_keystore,
    vault_recorder_keystore,
)
from chain.logs import DEFAULT_MAX_LOGS_RANGE, LogReader
from chain.manifest import Deployment
from core.config import Settings
from keys.identity import HybridIdentity
from keys.keystore import read_keystore_header, save_keystore

__all__ = ["AllowedAccount", "planned_accounts", "registry_accounts"]

_REMOVED = 3  # IRegistry.OracleStatus.Removed


@dataclass(frozen=True, order=True)
class AllowedAccount:
    """One allowlisted account and why it is there."""

    address: str
    role: str  # deployer | governor | oracle | controller | vault-recorder | repair-crew
    sector: str = ""  # the sector it acts for ("" for the deployer and the controller)
    index: int = 0  # an oracle's 1-based index in its sector


def _member_keystores(settings: Settings) -> list[tuple[Path, str, str, int]]:
    """(keystore, role, sector, index) of every member `qeaims deploy` registers."""
    out = [(governor_keystore(settings, s), "governor", s, 0) for s in sectors()]
    out += [(oracle_keystore(settings, s, i), "oracle", s, i) for s in sectors() for i in range(1, ORACLES_PER_SECTOR + 1)]
    out.append((controller_keystore(settings), "controller", "", 0))
    out += [(vault_recorder_keystore(settings, s), "vault-recorder", s, 0) for s in sectors()]
    return out


def _label(role: str, sector: str, index: int) -> str:
    """The keystore label `chain.deploy.member_identities` gives the same member."""
    return {"governor": f"governor {sector}", "oracle": f"oracle {sector} #{index}", "controller": "controller",
            "vault-recorder": f"vault recorder {sector}"}[role]


def planned_accounts(settings: Settings, deployer: str) -> list[AllowedAccount]:
    """The deployer and every member identity in the QEAIMS home.

    Missing keystores are created as the deploy would create them (`member_identities`'s labels); existing ones
    are only read (their public header), never rewritten, so a home whose keys were rotated is left as
    it is."""
    members = _member_keystores(settings)
    for path, role, sector, index in members:
        # only the missing ones: `member_identities` would also renumber a rotated keystore to epoch 1 and
        # move its archives aside (what a new deployment wants, not a plan of the running one's network)
        if not path.is_file():
            save_keystore(HybridIdentity.generate(), path, settings.passphrase, label=_label(role, sector, index),
                          scrypt_n=settings.scrypt_n)
    out = [AllowedAccount(to_checksum_address(deployer), "deployer")]
    out += [AllowedAccount(read_keystore_header(path).address, role, sector, index)
            for path, role, sector, index in members]
    return out


def _registered_oracles(client: ChainClient, deployment: Deployment, progress: Callable[[int, int], None],
                        max_logs_range: int) -> list[str]:
    """Every account an OracleRegistered log names (its first indexed topic), in chain order, read in pages
    the node accepts (`chain.logs`)."""
    topic = "0x" + client.abi("Registry").topic("OracleRegistered").hex()
    head = int(client.rpc.call("eth_blockNumber"), 16)
    start = max(0, deployment.deployed_at_block - 64)  # the registrations come after the role hand-over
    seen: dict[str, None] = {}
    pages = LogReader(client.rpc, max_logs_range).pages({"address": deployment.registry, "topics": [topic]},
                                                        start, head)
    for page in pages:
        for log in page.logs:
            seen[to_checksum_address("0x" + str(log["topics"][1])[-40:])] = None
        progress(page.hi - start + 1, head - start + 1)
    return list(seen)


def registry_accounts(client: ChainClient, deployment: Deployment, *, include_deployer: bool = False,
                      progress: Callable[[int, int], None] = lambda done, total: None,
                      max_logs_range: int = DEFAULT_MAX_LOGS_RANGE) -> list[AllowedAccount]:
    """The allowlist as the chain has it now: registered, not removed oracles and current governors.

    Candidates come from the Registry's logs, their status from `Registry.oracle` at the head (so a
    removal, a reinstatement or a key rotation counts as the contract counts it)."""
    out: list[AllowedAccount] = []
    if include_deployer:
        out.append(AllowedAccount(to_checksum_address(deployment.deployer), "deployer"))
    for account in _registered_oracles(client, deployment, progress, max_logs_range):
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
    listed = {a.address for a in out}
    out += [AllowedAccount(account, "repair-crew") for account in _repair_crews(client, deployment, max_logs_range)
            if account not in listed]
    return out


def _repair_crews(client: ChainClient, deployment: Deployment, max_logs_range: int) -> list[str]:
    """Every account (not a contract) that holds the IsolationQuorum's REPAIR_ROLE at the head: the council
    may appoint a repair dispatcher besides the controller, and its one job is to send ``beginRepair``."""
    topics = ["0x" + client.abi("IsolationQuorum").topic("RoleGranted").hex(), "0x" + REPAIR_ROLE.hex()]
    head = int(client.rpc.call("eth_blockNumber"), 16)
    seen: dict[str, None] = {}
    for log in LogReader(client.rpc, max_logs_range).get({"address": deployment.isolation_quorum, "topics": topics},
                                                         max(0, deployment.deployed_at_block - 64), head):
        seen[to_checksum_address("0x" + str(log["topics"][2])[-40:])] = None
    return [account for account in seen
            if client.call1("IsolationQuorum", "hasRole", REPAIR_ROLE, account)
            and client.rpc.call("eth_getCode", [account, "latest"]) in ("0x", "0x0", "")]
