"""Each validator's Besu configuration: ``config.toml``, ``permissions_config.toml``, ``static-nodes.json``.

Besu's TOML configuration file takes every command-line option by its name without the leading
dashes (Besu, "Use a configuration file"); lists become TOML string arrays and paths are quoted.
The options used, and why:

- ``discovery-enabled=false`` with ``static-nodes-file``: a consortium knows its peers; static nodes
  are re-dialled when a connection drops, bootnodes are not (Besu, "Static nodes").
- ``permissions-nodes-config-file(-enabled)`` and ``permissions-accounts-config-file(-enabled)``: local
  permissioning, one shared file (Besu, "Use local permissioning"). The file is mounted at the data
  path's ``permissions_config.toml`` *and* named by the options, because the docs say the options are
  not read when Besu runs from its Docker image.
- ``min-gas-price=0``: every node of a free-gas network must accept a zero price, or it silently drops
  such transactions (Besu, "Configure free gas networks").
- Two JSON-RPC endpoints, because whatever reaches an endpoint can call every API it serves
  (``host-allowlist`` checks only the Host header the caller writes, and Besu authenticates no one by
  default). The HTTP endpoint, on every interface for the QEAIMS services, serves only what they call:
  ETH (every method `chain.rpc` sends is ``eth_*``), NET and WEB3 (read-only identity). The operator's
  APIs (QBFT validator votes, PERM allowlist edits and reloads, ADMIN peers, TXPOOL) are on a WebSocket
  endpoint bound to ``127.0.0.1`` inside the validator: only a process in the validator's own network
  namespace reaches it (``docker run --network container:…``, docs/deploy-besu.md). Besu's image sets
  ``BESU_RPC_WS_HOST=0.0.0.0``, and an environment variable beats the configuration file, so the Compose
  file also passes `LOOPBACK_FLAGS` on the command line, which beats both (Besu, "Configure Besu": order
  of precedence). Authentication (``rpc-http-authentication-*``) was the other way; it needs a bcrypt
  credentials file, a login for the operator and every stack method listed as exempt, for no gain here.
  ``host-allowlist`` names the hosts the stack calls the node by, not ``*``.
- ``rpc-max-logs-range=5000``: Besu's own default (since 23.1.2), written out so an operator who changes
  it sees that the stack's ``QEAIMS_MAX_LOGS_RANGE`` (the same 5,000 by default, set in the Compose file)
  goes with it: every QEAIMS log reader asks for at most that many blocks per ``eth_getLogs`` and halves
  a span the node refuses (`chain.logs`), so a limit of any size works; no limit (``0``) would let one
  wide request hold a node (Besu warns that a whole-chain ``eth_getLogs`` can hang it).
- ``target-gas-limit`` equal to the genesis gas limit, so the block gas limit stays where it started.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from chain.logs import DEFAULT_MAX_LOGS_RANGE

__all__ = [
    "CONFIG_DIR",
    "DATA_PATH",
    "LOOPBACK_FLAGS",
    "MAX_LOGS_RANGE",
    "OPERATOR_APIS",
    "OPERATOR_WS_PORT",
    "P2P_PORT",
    "RPC_APIS",
    "RPC_PORT",
    "node_config",
    "permissions_config",
    "static_nodes",
    "toml_text",
]

CONFIG_DIR = "/config"
"""Where the validator's read-only files (genesis, key, config) are mounted."""
DATA_PATH = "/var/lib/besu"
"""The data path: a volume of its own (Besu's docs: never mount at /opt/besu, the image's own)."""
P2P_PORT = 30303
RPC_PORT = 8545
RPC_APIS = ("ETH", "NET", "WEB3")
"""The HTTP endpoint the QEAIMS services use, on every interface: nothing an operator alone may do."""
OPERATOR_WS_PORT = 8546
OPERATOR_APIS = ("QBFT", "PERM", "ADMIN", "TXPOOL", "ETH", "NET")
"""The WebSocket endpoint on the validator's loopback: validator votes, allowlists, peers, and enough ETH
to watch the result."""
LOOPBACK_HOST = "127.0.0.1"
LOOPBACK_FLAGS = (f"--rpc-ws-host={LOOPBACK_HOST}",)
"""Command-line flags every validator container gets: they outrank the image's ``BESU_RPC_WS_HOST=0.0.0.0``."""
MAX_LOGS_RANGE = DEFAULT_MAX_LOGS_RANGE
"""Each node's ``rpc-max-logs-range`` and the stack's ``QEAIMS_MAX_LOGS_RANGE``: Besu's default, 5,000 blocks."""

TomlValue = str | int | bool | Sequence[str]


def _toml_value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string for the ASCII we write
    return "[" + ", ".join(json.dumps(v) for v in value) + "]"


def toml_text(entries: Mapping[str, TomlValue], *, header: str = "") -> str:
    """Flat TOML (key = value lines), the only shape Besu's files need."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{key}={_toml_value(value)}" for key, value in entries.items()]
    return "\n".join(lines) + "\n"


def node_config(*, identity: str, host: str, gas_limit: int, dns: bool) -> str:
    """One validator's ``config.toml``; ``host`` is what the other nodes and the stack call it."""
    permissions = f"{DATA_PATH}/permissions_config.toml"
    entries: dict[str, TomlValue] = {
        "identity": identity,
        "data-path": DATA_PATH,
        "genesis-file": f"{CONFIG_DIR}/genesis.json",
        "node-private-key-file": f"{CONFIG_DIR}/key",
        "logging": "INFO",
        "p2p-enabled": True,
        "p2p-host": host,
        "p2p-interface": "0.0.0.0",
        "p2p-port": P2P_PORT,
        "discovery-enabled": False,
        "static-nodes-file": f"{DATA_PATH}/static-nodes.json",
        "rpc-http-enabled": True,
        "rpc-http-host": "0.0.0.0",
        "rpc-http-port": RPC_PORT,
        "rpc-http-api": list(RPC_APIS),
        "rpc-ws-enabled": True,
        "rpc-ws-host": LOOPBACK_HOST,
        "rpc-ws-port": OPERATOR_WS_PORT,
        "rpc-ws-api": list(OPERATOR_APIS),
        "host-allowlist": sorted({"localhost", "127.0.0.1", host}),
        "rpc-max-logs-range": MAX_LOGS_RANGE,
        "min-gas-price": 0,
        "target-gas-limit": gas_limit,
        "permissions-nodes-config-file-enabled": True,
        "permissions-nodes-config-file": permissions,
        "permissions-accounts-config-file-enabled": True,
        "permissions-accounts-config-file": permissions,
    }
    if dns:  # enode URLs with host names rather than IP addresses: an early-access Besu feature
        entries["Xdns-enabled"] = True
        entries["Xdns-update-enabled"] = True
    return toml_text(entries, header=f"Besu configuration of {identity} (generated by `qeaims network generate`).")


def permissions_config(enodes: Sequence[str] | None, accounts: Sequence[str]) -> str:
    """The shared ``permissions_config.toml``: the allowlisted accounts and the validators' enodes (no
    ``nodes-allowlist`` at all when ``enodes`` is None: an empty one would refuse every peer)."""
    entries: dict[str, TomlValue] = {"accounts-allowlist": [a.lower() for a in accounts]}  # as Besu's docs write them
    if enodes is not None:
        entries["nodes-allowlist"] = list(enodes)
    return toml_text(entries, header=(
        "Local permissioning (Besu): only these nodes may connect, only these accounts may send transactions.\n"
        "Rebuild the accounts from the chain with `qeaims network allowlist` and reload every node with\n"
        "perm_reloadPermissionsFromFile (docs/deploy-besu.md)."))


def static_nodes(enodes: Sequence[str]) -> str:
    return json.dumps(list(enodes), indent=2) + "\n"
