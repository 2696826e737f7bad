"""The single-machine layout: a Compose file with the N validators and the QEAIMS services.

Validators get fixed addresses on a bridge network of their own (enode URLs must name an IP
address unless Besu's early-access DNS support is switched on), publish their JSON-RPC on the
host's loopback only (the HTTP endpoint, which serves only the stack's ETH/NET/WEB3; the operator's
WebSocket endpoint is on the container's own loopback, forced there by `LOOPBACK_FLAGS`, and never
published), and keep their database in ``validator-N/data`` mounted at ``/var/lib/besu``
(a folder, not a named volume: Docker creates a volume's missing mount point owned by root, and
Besu's image runs as uid 1000, which must own the folder). Each sector's
oracles and twin talk to the validator of that sector's operator (`validator_of`); the city's control
room (broker, controller) talks to the first validator.

The QEAIMS services run the image ``deploy/Dockerfile`` builds (``qeaims:<version>``); they share one
QEAIMS home volume here because one machine holds every operator's keystores in this layout. In a
real consortium each operator runs its own validator and services with only its own keystores
(docs/deploy-besu.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chain.besu.image import DEFAULT_BESU_IMAGE
from chain.besu.nodefiles import CONFIG_DIR, DATA_PATH, LOOPBACK_FLAGS, MAX_LOGS_RANGE, RPC_PORT

__all__ = ["DEFAULT_BESU_IMAGE", "QEAIMS_IMAGE", "SUBNET", "compose_document", "default_hosts"]
QEAIMS_IMAGE = "qeaims:0.1.0"
SUBNET = "172.30.42.0/24"
_FIRST_HOST = 11


def default_hosts(count: int) -> list[str]:
    """Validator i's fixed address on the Compose network: 172.30.42.11, .12, ..."""
    return [f"172.30.42.{_FIRST_HOST + i}" for i in range(count)]


def _qeaims(command: Sequence[str], rpc_url: str, depends: Sequence[str]) -> dict[str, Any]:
    return {
        "image": QEAIMS_IMAGE,
        "command": ["--rpc-url", rpc_url, *command],
        "environment": {"QEAIMS_HOME": "/qeaims", "QEAIMS_PASSPHRASE": "${QEAIMS_PASSPHRASE:?set the keystore passphrase}",
                        "QEAIMS_MAX_LOGS_RANGE": str(MAX_LOGS_RANGE)},  # the validators' rpc-max-logs-range
        "volumes": ["${QEAIMS_HOME_DIR:-./qeaims-home}:/qeaims"],
        "depends_on": list(depends),
        "networks": ["qbft"],
        "restart": "unless-stopped",
    }


def compose_document(*, validators: Sequence[tuple[str, str]], image: str,
                     services: Sequence[tuple[str, int]], oracles_per_sector: int) -> dict[str, Any]:
    """``validators``: (name, ip) in order; ``services``: (sector, index of its operator's validator)."""
    out: dict[str, Any] = {"name": "qeaims-consortium", "services": {},
                           "networks": {"qbft": {"driver": "bridge", "ipam": {"config": [{"subnet": SUBNET}]}}}}
    names = [name for name, _ in validators]
    for i, (name, ip) in enumerate(validators):
        out["services"][name] = {
            "image": image,
            "command": [f"--config-file={CONFIG_DIR}/config.toml", *LOOPBACK_FLAGS],
            "volumes": [
                f"./{name}/config.toml:{CONFIG_DIR}/config.toml:ro",
                f"./{name}/key:{CONFIG_DIR}/key:ro",
                f"./genesis.json:{CONFIG_DIR}/genesis.json:ro",
                f"./{name}/data:{DATA_PATH}",
                f"./static-nodes.json:{DATA_PATH}/static-nodes.json:ro",
                f"./permissions_config.toml:{DATA_PATH}/permissions_config.toml",
            ],
            "ports": [f"127.0.0.1:{RPC_PORT + i}:{RPC_PORT}"],
            "networks": {"qbft": {"ipv4_address": ip}},
            "restart": "unless-stopped",
        }
    rpc = {i: f"http://{ip}:{RPC_PORT}" for i, (_, ip) in enumerate(validators)}
    out["services"]["broker"] = {
        "image": QEAIMS_IMAGE, "command": ["broker", "--host", "0.0.0.0", "--port", "1883"],
        "networks": ["qbft"], "restart": "unless-stopped",
    }
    out["services"]["controller"] = _qeaims(["controller", "--mqtt-host", "broker"], rpc[0], [names[0], "broker"])
    for sector, v in services:
        out["services"][f"oracles-{sector}"] = _qeaims(
            ["oracles", "--sector", sector, "--count", str(oracles_per_sector), "--mqtt-host", "broker"],
            rpc[v], [names[v], "broker"])
        out["services"][f"twin-{sector}"] = _qeaims(
            ["twin", "--sector", sector, "--mqtt-host", "broker"], rpc[v], [names[v], "broker", f"oracles-{sector}"])
    return out
