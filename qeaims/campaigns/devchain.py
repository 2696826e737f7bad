"""A campaign's own dev chain: a private Anvil on a free port, in a directory of its own, with the
development consortium deployed on it (`chain.deploy.deploy_dev_consortium`, the real contracts).

It never touches the user's chain: its home is `<home>/campaigns/<name>` (wiped at start, so a
journal of an earlier campaign is never replayed) and its port is one the kernel says is free.

`advance_time` is the one Anvil-only method a campaign uses, and the reason it lives here and not in
production code: a campaign run stands for one voting window and one quarantine-rate window of a
real city (each run's liars are a fresh choice, and the model allows at most f liars *per window*).
Moving the clock past both between runs lets proposals left open by liars expire and the quarantine
rate refill, as a day would, instead of waiting a day. No snapshot or revert is used: state between
runs is restored by the production path (repair, reintegration votes, the council).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from chain.client import ChainClient
from chain.deploy import deploy_dev_consortium
from chain.manifest import Deployment
from chain.node import start_anvil, stop_anvil
from chain.rpc import RpcClient
from core.config import Settings, load_settings
from core.errors import ConfigError

__all__ = ["DevChain", "advance_time", "dev_chain"]

# keystores of a throwaway chain: the weakest scrypt cost the settings allow (2^15 costs ~4 s at deploy)
_CAMPAIGN_SCRYPT_N = 2**10


@dataclass(frozen=True)
class DevChain:
    settings: Settings
    client: ChainClient
    deployment: Deployment


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def dev_chain(base: Settings, name: str, progress: Callable[[str], None] = lambda _: None, *,
              port: int | None = None) -> Iterator[DevChain]:
    """Start the campaign's Anvil (on `port`, or one the kernel says is free), deploy the consortium,
    yield it; stop Anvil and its keeper after."""
    if base.rpc_url_override:
        raise ConfigError("a campaign runs on a dev chain of its own: drop --rpc-url (the chain at that URL is "
                          "not touched)")
    home = base.home / "campaigns" / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    settings = load_settings(home=home, rpc_port=port or _free_port(), scrypt_n=_CAMPAIGN_SCRYPT_N,
                             passphrase=base.passphrase, voting_window_s=base.voting_window_s,
                             isolation_cap_bps=base.isolation_cap_bps)
    progress(f"starting a private Anvil on port {settings.rpc_port}")
    start_anvil(settings)
    try:
        client, deployment = deploy_dev_consortium(settings, progress)
        yield DevChain(settings, client, deployment)
    finally:
        stop_anvil(settings)


def advance_time(rpc: RpcClient, seconds: int) -> None:
    """Move the dev chain's clock `seconds` forward and mine a block there (see the module's docstring)."""
    rpc.call("evm_increaseTime", [seconds])
    rpc.call("evm_mine", [])
