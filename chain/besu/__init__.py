"""A Besu QBFT consortium for QEAIMS: genesis, node keys and configs, permissioning, Compose file.

`generate_network` writes a network folder (`qeaims network generate`); `registry_accounts`
rebuilds the accounts allowlist from the live Registry and council (`qeaims network allowlist`).
docs/deploy-besu.md walks an operator through it.

The names below are re-exported lazily (PEP 562): `qeaims network` imports the light
`chain.besu.compose` for its default image when any `qeaims` command starts, and an eager
re-export would load the chain client and eth_account with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy_exports import lazy_exports

if TYPE_CHECKING:
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

_SOURCES: dict[str, str] = {
    "AllowedAccount": "chain.besu.accounts",
    "GeneratedNetwork": "chain.besu.generate",
    "NetworkSpec": "chain.besu.generate",
    "NodeKey": "chain.besu.nodekeys",
    "QbftParams": "chain.besu.genesis",
    "Validator": "chain.besu.generate",
    "decode_extra_data": "chain.besu.genesis",
    "encode_extra_data": "chain.besu.genesis",
    "generate_network": "chain.besu.generate",
    "planned_accounts": "chain.besu.accounts",
    "read_key_file": "chain.besu.nodekeys",
    "registry_accounts": "chain.besu.accounts",
}
"""Where each re-exported name is defined: `__getattr__` imports that submodule on first access."""


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
