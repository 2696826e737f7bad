"""Small helpers shared by the chain tests (identities of the dev consortium, recorders)."""

from __future__ import annotations

from chain.deploy import dev_oracle, governor_keystore
from chain.manifest import load_deployment
from chain.outbox import EventOutbox
from chain.recorder import EventRecorder
from keys.identity import HybridIdentity
from keys.keystore import load_keystore
from qeaims.config import Settings


def oracle(settings: Settings, sector: str, index: int) -> HybridIdentity:
    return dev_oracle(settings, sector, index)


def governor(settings: Settings, sector: str) -> HybridIdentity:
    return load_keystore(governor_keystore(settings, sector), settings.passphrase)  # one, by sector


def recorder(chain_client, settings: Settings, identity: HybridIdentity) -> EventRecorder:  # type: ignore[no-untyped-def]
    return EventRecorder(chain_client, identity, EventOutbox.for_oracle(
        settings.outbox_dir, identity.address, load_deployment(settings.manifest_path).deployment_id))


def wait_journaled(settings: Settings, timeout_s: float = 10.0) -> int:
    """Block until the keeper has journaled the chain's head (what survives a hard kill)."""
    import time

    from chain.node import chain_status

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = chain_status(settings)
        if status.block_number is not None and status.journaled_block >= status.block_number:
            return status.journaled_block
        time.sleep(0.05)
    raise AssertionError("the chain journal did not catch up")
