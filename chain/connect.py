"""One place that turns settings + the manifest into a ready ChainClient."""

from __future__ import annotations

from chain.abi import ContractAbi
from chain.artifacts import CONTRACTS, load_artifact
from chain.client import ChainClient
from chain.manifest import Deployment, load_deployment
from chain.node import rpc_block_number
from chain.rpc import RpcClient
from core.config import Settings
from core.errors import DeploymentMissing

__all__ = ["connect", "contract_abis"]


def contract_abis() -> dict[str, ContractAbi]:
    return {name: ContractAbi(name, load_artifact(name).abi) for name in CONTRACTS}


def connect(settings: Settings, *, deployment: Deployment | None = None) -> tuple[ChainClient, Deployment]:
    """Client for the deployed contracts; fails in plain words if the chain or deployment is missing."""
    rpc_block_number(settings.rpc_url)
    deployment = deployment or load_deployment(settings.manifest_path)
    rpc = RpcClient(settings.rpc_url)
    chain_id = int(rpc.call("eth_chainId"), 16)
    if chain_id != deployment.chain_id:
        raise DeploymentMissing(
            f"the chain at {settings.rpc_url} has id {chain_id} but the deployment is for {deployment.chain_id}"
        )
    code = rpc.call("eth_getCode", [deployment.registry, "latest"])
    if code in ("0x", "0x0", None):
        raise DeploymentMissing(
            f"no Registry contract at {deployment.registry} on {settings.rpc_url}: "
            "the chain was reset; run `qeaims deploy` again"
        )
    abis = contract_abis()
    client = ChainClient(
        rpc,
        chain_id=chain_id,
        contracts={name: (addr, abis[name]) for name, addr in deployment.addresses().items()},
        inflight_per_sender=settings.inflight_per_sender,
        receipt_timeout_s=settings.tx_timeout_s,
    )
    return client, deployment
