"""Deploy the four contracts, hand every admin role to the governance council, and (for
development) create and register the consortium through real council proposals.

Wiring: the deployer is admin only for the few transactions it takes to grant STATUS_ROLE to the
quorum contract and the admin roles to the council; then it renounces its roles, so from the
manifest's block on only the council changes membership or configuration. Anyone can check that
from the RoleGranted/RoleRevoked logs.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

from chain.abi import type_string
from chain.artifacts import build_contracts, load_artifact
from chain.client import ChainClient
from chain.connect import contract_abis
from chain.consortium import (
    CONTROL_OPERATOR,
    CONTROL_SECTOR,
    ORACLES_PER_SECTOR,
    nodes,
    operators,
    sectors,
    vault_sector,
)
from chain.governance import STORM_OVERRIDES, Call, Council
from chain.manifest import Deployment, save_deployment
from chain.node import DEV_MNEMONIC
from chain.rpc import RpcClient
from core.config import Settings
from core.errors import TransactionFailed
from core.sectors import BUILTIN
from keys.council_messages import sign_governor_key
from keys.hybrid import sign_registration
from keys.identity import HybridIdentity
from keys.ids import to_bytes32
from keys.keystore import load_keystore, save_keystore

__all__ = [
    "DevConsortium",
    "MemberIdentities",
    "controller_keystore",
    "create_address",
    "deploy_contracts",
    "deploy_dev_consortium",
    "dev_controller",
    "dev_deployer",
    "dev_governors",
    "dev_oracle",
    "dev_vault_recorder",
    "governor_keystore",
    "member_identities",
    "oracle_keystore",
    "role",
    "vault_recorder_keystore",
]

Progress = Callable[[str], None]

GOVERNANCE_ROLE = keccak(text="GOVERNANCE_ROLE")
STATUS_ROLE = keccak(text="STATUS_ROLE")
REPAIR_ROLE = keccak(text="REPAIR_ROLE")
DEFAULT_ADMIN_ROLE = b"\x00" * 32


def role(name: str) -> bytes:
    return DEFAULT_ADMIN_ROLE if name == "DEFAULT_ADMIN_ROLE" else keccak(text=name)


def dev_deployer() -> LocalAccount:
    """Anvil's first development account (funded at genesis). Development chains only."""
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0")
    return account


def _constructor_data(name: str, args: list[Any]) -> bytes:
    artifact = load_artifact(name)
    ctor = next((e for e in artifact.abi if e["type"] == "constructor"), None)
    encoded = abi_encode([type_string(p) for p in ctor["inputs"]], args) if ctor else b""
    return artifact.bytecode + encoded


def create_address(sender: str, nonce: int) -> str:
    """The address a CREATE from `sender` at `nonce` deploys to: keccak256(rlp([sender, nonce]))[12:]."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


def _create(client: ChainClient, deployer: LocalAccount, name: str, args: list[Any]) -> str:
    receipt = client.wait(client.send_raw(deployer, to=None, data=_constructor_data(name, args),
                                          contract=name, label="constructor"))
    return to_checksum_address(receipt["contractAddress"])


def deploy_contracts(
    settings: Settings, deployer: LocalAccount, governors: Sequence[HybridIdentity],
    progress: Progress = lambda _: None,
) -> tuple[ChainClient, Deployment]:
    """Deploy and wire the contracts; returns a client bound to them and the saved manifest.

    Each governor's ML-DSA-65 key goes into the council's constructor with a proof of possession
    bound to the council's address, which is predicted from the deployer's nonce (CREATE) and
    checked after deployment."""
    build_contracts()
    rpc = RpcClient(settings.rpc_url)
    chain_id = int(rpc.call("eth_chainId"), 16)
    abis = contract_abis()
    bootstrap = ChainClient(rpc, chain_id=chain_id, contracts={}, inflight_per_sender=settings.inflight_per_sender)
    progress("deploying Registry")
    registry = _create(bootstrap, deployer, "Registry", [deployer.address])
    progress("deploying EventLedger")
    ledger = _create(bootstrap, deployer, "EventLedger", [registry])
    progress("deploying IsolationQuorum")
    quorum = _create(bootstrap, deployer, "IsolationQuorum",
                     [registry, deployer.address, settings.voting_window_s, settings.isolation_cap_bps])
    progress("deploying GovernanceCouncil")
    nonce = int(rpc.call("eth_getTransactionCount", [deployer.address, "pending"]), 16)
    predicted = create_address(deployer.address, nonce)
    proofs = [sign_governor_key(g, chain_id=chain_id, council=predicted, key_epoch=1) for g in governors]
    council = _create(bootstrap, deployer, "GovernanceCouncil",
                      [[g.address for g in governors], [g.pq_public_key for g in governors], proofs,
                       settings.council_threshold, settings.proposal_lifetime_s, settings.council_delay_s])
    if council != predicted:
        raise TransactionFailed(f"the council deployed at {council}, not at the predicted {predicted}: "
                                "its governors' proofs of possession name the wrong address")
    client = ChainClient(
        rpc,
        chain_id=chain_id,
        contracts={
            "Registry": (registry, abis["Registry"]),
            "EventLedger": (ledger, abis["EventLedger"]),
            "IsolationQuorum": (quorum, abis["IsolationQuorum"]),
            "GovernanceCouncil": (council, abis["GovernanceCouncil"]),
        },
        inflight_per_sender=settings.inflight_per_sender,
        receipt_timeout_s=settings.tx_timeout_s,
    )
    progress("handing admin roles to the council")
    handover: list[tuple[str, str, list[Any]]] = [("Registry", "grantRole", [STATUS_ROLE, quorum])]
    for contract in ("Registry", "IsolationQuorum"):
        handover += [(contract, "grantRole", [GOVERNANCE_ROLE, council]),
                     (contract, "grantRole", [DEFAULT_ADMIN_ROLE, council]),
                     (contract, "renounceRole", [GOVERNANCE_ROLE, deployer.address]),
                     (contract, "renounceRole", [DEFAULT_ADMIN_ROLE, deployer.address])]
    # one account's consecutive nonces: mined in this order, sharing blocks on a chain with a block time
    client.send_all(functools.partial(client.send, deployer, contract, function, *args)
                    for contract, function, args in handover)
    block = int(rpc.call("eth_blockNumber"), 16)
    deployment = Deployment(
        deployment_id=uuid.uuid4().hex,
        chain_id=chain_id,
        rpc_url=settings.rpc_url,
        deployed_at_block=block,
        deployer=deployer.address,
        registry=registry,
        event_ledger=ledger,
        isolation_quorum=quorum,
        governance_council=council,
        governors=tuple(g.address for g in governors),
        council_threshold=settings.council_threshold,
    )
    save_deployment(deployment, settings.manifest_path)
    return client, deployment


@dataclass(frozen=True)
class DevConsortium:
    governors: dict[str, HybridIdentity]  # by sector
    oracles: dict[str, list[HybridIdentity]]  # by sector, index 1..n at positions 0..n-1


def governor_keystore(settings: Settings, sector: str) -> Path:
    return settings.keystore_dir / "governors" / f"{sector}.json"


def controller_keystore(settings: Settings) -> Path:
    return settings.keystore_dir / "controller.json"


def dev_controller(settings: Settings) -> HybridIdentity:
    """The controller's identity, from its keystore."""
    return load_keystore(controller_keystore(settings), settings.passphrase)


def vault_recorder_keystore(settings: Settings, sector: str) -> Path:
    return settings.keystore_dir / "vaults" / f"{sector}.json"


def dev_vault_recorder(settings: Settings, sector: str) -> HybridIdentity:
    """The identity that records ``sector``'s vault events, from its keystore."""
    return load_keystore(vault_recorder_keystore(settings, sector), settings.passphrase)


def oracle_keystore(settings: Settings, sector: str, index: int) -> Path:
    return settings.keystore_dir / "oracles" / f"{sector}-{index}.json"


def dev_oracle(settings: Settings, sector: str, index: int) -> HybridIdentity:
    """A development-consortium oracle's identity, from its keystore."""
    return load_keystore(oracle_keystore(settings, sector, index), settings.passphrase)


def dev_governors(settings: Settings) -> list[HybridIdentity]:
    """The development council's six governors, in sector order."""
    return [load_keystore(governor_keystore(settings, s), settings.passphrase) for s in sectors()]


def _identity(settings: Settings, path: Path, label: str) -> HybridIdentity:
    """Reuse a keystore if there is one. A new deployment registers its current key at epoch 1, so a
    keystore rotated under an earlier deployment is renumbered (same keys, archives kept)."""
    if path.exists():
        identity = load_keystore(path, settings.passphrase)
        archives = list(path.parent.glob(f"{path.stem}.epoch*.json"))
        if archives:
            retired = path.parent / "retired" / f"{int(time.time())}"
            retired.mkdir(parents=True, exist_ok=True, mode=0o700)
            for archive in archives:
                archive.rename(retired / archive.name)  # kept: they prove the earlier deployment's signatures
        if identity.key_epoch != 1:
            identity = HybridIdentity(account=identity.account, mldsa_key=identity.mldsa_key, key_epoch=1)
            save_keystore(identity, path, settings.passphrase, label=label, scrypt_n=settings.scrypt_n,
                          overwrite=True)
        return identity
    identity = HybridIdentity.generate()
    save_keystore(identity, path, settings.passphrase, label=label, scrypt_n=settings.scrypt_n)
    return identity


FOUNDING_GOVERNORS_MAX = 6
"""Governors written into the council's constructor. Each brings a 1,952-byte ML-DSA-65 key and a
3,309-byte proof of possession; seven no longer fit EIP-3860's 49,152-byte initcode limit, so the
governors of any further sector join afterwards through an ``addGovernor`` council proposal."""


def council_threshold_for(governors: int, configured: int) -> int:
    """The approvals a council of ``governors`` needs: at least two thirds of them, and never fewer
    than configured. Adding governors without raising the threshold would let a shrinking share of
    them act (4 of 6 is two thirds; 4 of 9 would be a minority)."""
    return max(configured, -(-2 * governors // 3))


@dataclass(frozen=True)
class MemberIdentities:
    """Everyone the development consortium registers and who signs transactions for it."""

    governors: dict[str, HybridIdentity]  # by sector
    oracles: dict[str, list[HybridIdentity]]  # by sector, index 1..n at positions 0..n-1
    controller: HybridIdentity
    vault_recorders: dict[str, HybridIdentity]  # by the sector whose vault it records

    def signers(self) -> list[HybridIdentity]:
        """Every member account, in a fixed order: governors, oracles, the controller, the recorders."""
        return [*self.governors.values(), *(o for group in self.oracles.values() for o in group), self.controller,
                *self.vault_recorders.values()]


def member_identities(settings: Settings) -> MemberIdentities:
    """The members' identities from their keystores, created where missing (`_identity`).

    `deploy_dev_consortium` registers exactly these, and `qeaims network generate` allowlists them
    before the chain exists, so both read them here."""
    return MemberIdentities(
        governors={s: _identity(settings, governor_keystore(settings, s), f"governor {s}") for s in sectors()},
        oracles={s: [_identity(settings, oracle_keystore(settings, s, i), f"oracle {s} #{i}")
                     for i in range(1, ORACLES_PER_SECTOR + 1)] for s in sectors()},
        controller=_identity(settings, controller_keystore(settings), "controller"),
        vault_recorders={s: _identity(settings, vault_recorder_keystore(settings, s), f"vault recorder {s}")
                         for s in sectors()},
    )


def deploy_dev_consortium(settings: Settings, progress: Progress = lambda _: None, *,
                          deployer: LocalAccount | None = None) -> tuple[ChainClient, Deployment]:
    """Fresh contracts plus the development city, registered through council proposals; one more
    proposal puts the storm-day overrides (`STORM_OVERRIDES`) on the council's emergency allowlist.

    The deployer is Anvil's first development account unless one is given: a consortium chain
    (docs/deploy-besu.md) uses the key `qeaims network generate` made and funded at genesis."""
    progress("creating keystores")
    members = member_identities(settings)
    governors, oracles, controller, vault_recorders = (members.governors, members.oracles, members.controller,
                                                       members.vault_recorders)
    deployer = deployer or dev_deployer()
    founders = list(governors.values())[:FOUNDING_GOVERNORS_MAX]
    client, deployment = deploy_contracts(settings, deployer, founders, progress)
    progress("funding governors, oracles, the controller and the vaults' recorders")
    client.send_all(functools.partial(client.send_raw, deployer, to=m.address, value=10**21, gas=21_000,
                                      label="fund") for m in members.signers())
    council = Council(client, founders, max_logs_range=settings.max_logs_range)
    registry = deployment.registry
    proposals: list[tuple[list[Call], str]] = []
    operator_of = operators()
    for sector in sectors():
        calls: list[Call] = [] if sector in BUILTIN else [("Registry", "addSector", [to_bytes32(sector)])]
        calls.append(("Registry", "addOperator", [to_bytes32(operator_of[sector]), to_bytes32(sector)]))
        for oracle in oracles[sector]:
            pop = sign_registration(oracle, chain_id=client.chain_id, registry=registry,
                                    sector=to_bytes32(sector), operator=to_bytes32(operator_of[sector]))
            calls.append(("Registry", "registerOracle", [oracle.address, to_bytes32(sector),
                                                         to_bytes32(operator_of[sector]), oracle.pq_public_key, pop]))
        for node in (n for n in nodes() if n.sector == sector):
            calls.append(("Registry", "addNode", [to_bytes32(node.node), to_bytes32(sector), to_bytes32(node.kind),
                                                  node.criticality, [to_bytes32(d) for d in node.depends_on]]))
        proposals.append((calls, f"register the {sector} sector: operator, {len(oracles[sector])} oracles, nodes"))
    pop = sign_registration(controller, chain_id=client.chain_id, registry=registry,
                            sector=to_bytes32(CONTROL_SECTOR), operator=to_bytes32(CONTROL_OPERATOR))
    proposals.append(([
        ("Registry", "addSector", [to_bytes32(CONTROL_SECTOR)]),
        ("Registry", "addOperator", [to_bytes32(CONTROL_OPERATOR), to_bytes32(CONTROL_SECTOR)]),
        ("Registry", "registerOracle", [controller.address, to_bytes32(CONTROL_SECTOR), to_bytes32(CONTROL_OPERATOR),
                                        controller.pq_public_key, pop]),
        ("IsolationQuorum", "grantRole", [REPAIR_ROLE, controller.address]),
    ], "register the self-healing controller: its own sector, identity and REPAIR_ROLE"))
    vault_calls: list[Call] = []
    for sector, recorder in vault_recorders.items():
        own = to_bytes32(vault_sector(sector))  # its sector and its operator (`vault_sector`)
        pop = sign_registration(recorder, chain_id=client.chain_id, registry=registry, sector=own, operator=own)
        vault_calls += [("Registry", "addSector", [own]), ("Registry", "addOperator", [own, own]),
                        ("Registry", "registerOracle", [recorder.address, own, own, recorder.pq_public_key, pop])]
    proposals.append((vault_calls, "register the vaults' recorders: each in a sector of its own"))
    proposals.append((council.emergency_allow(STORM_OVERRIDES),
                      "emergency allowlist: the storm-day overrides forceIsolate, forceReintegrate, setIsolationCap"))
    joining = list(governors.values())[FOUNDING_GOVERNORS_MAX:]
    if joining:  # the governors of sectors beyond the founding ones join as a real council adds members
        threshold = council_threshold_for(len(governors), settings.council_threshold)
        proposals.append(([*(("GovernanceCouncil", "addGovernor", [
            g.address, g.pq_public_key,
            sign_governor_key(g, chain_id=client.chain_id, council=deployment.governance_council, key_epoch=1)])
            for g in joining), ("GovernanceCouncil", "changeThreshold", [threshold])],
            (f"add the governors of {', '.join(s for s in governors if governors[s] in joining)}; "
            f"threshold {threshold} of {len(governors)}")))
    progress(f"registering {len(sectors())} sectors, the controller and the vaults' recorders, and allowlisting the storm-day overrides, "
             f"through {len(proposals)} council proposals")
    council.pass_proposals(proposals)
    return client, deployment
