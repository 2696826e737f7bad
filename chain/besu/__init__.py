"""A Besu QBFT consortium for QEAIMS: genesis, node keys and configs, permissioning, Compose file.

`generate_network` writes a network folder (`qeaims network generate`); `registry_accounts`
rebuilds the accounts allowlist from the live Registry and council (`qeaims network allowlist`).
docs/deploy-besu.md walks an operator through it.
"""

from chain.besu.accounts import AllowedAccount, planned_accounts, registry_accounts
from chain.besu.generate import GeneratedNetwork, NetworkSpec, Validator, generate_network
from chain.besu.genesis import QbftParams, decode_extra_data, encode_extra_data
from chain.besu.nodekeys import NodeKey, read_key_file

__all__ = [
    "AllowedAccount",
    "GeneratedNetwork",
    "NetworkSpec",
    "NodeKey",
    "QbftParams",
    "Validator",
    "decode_extra_data",
    "encode_extra_data",
    "generate_network",
    "planned_accounts",
    "read_key_file",
    "registry_accounts",
]
