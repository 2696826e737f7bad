"""Where a deployment keeps its vaults and readers' keys, and a vault's service opened on the chain.

- ``<home>/vaults/<sector>/``: the vault's files (`vaults.store`);
- ``<home>/keystores/vault-readers/<sector>/<reader>.json``: a reader's ML-KEM key (`vaults.reader_keys`);
  on a real site each reader keeps its own on its own machine and hands the custodian its public key;
- ``<home>/keystores/vaults/<sector>.json``: the vault's recorder (`chain.deploy.vault_recorder_keystore`).

A vault is named after its sector, and only a registered sector has one: its recorder is registered
for it at deployment.
"""

from __future__ import annotations

from pathlib import Path

from chain.client import ChainClient
from chain.deploy import dev_vault_recorder, vault_recorder_keystore
from chain.manifest import Deployment
from chain.outbox import EventOutbox
from chain.recorder import EventRecorder
from core.config import Settings
from core.sectors import Sector
from vaults.onchain import SealWatch
from vaults.service import VaultService
from vaults.store import VaultError, VaultStore, check_name

__all__ = ["open_vault", "reader_key_path", "vault_name", "vault_root"]


def vault_name(name: str) -> str:
    """``name`` if it is a vault's (a registered sector's) name; a plain `VaultError` otherwise."""
    names = [s.value for s in Sector]
    if name not in names:
        raise VaultError(f"no vault {name!r}: each registered sector has one ({', '.join(names)})")
    return name


def vault_root(settings: Settings) -> Path:
    return settings.home / "vaults"


def reader_key_path(settings: Settings, vault: str, reader: str) -> Path:
    return settings.keystore_dir / "vault-readers" / check_name(vault, "vault") / f"{check_name(reader, 'reader')}.json"


def open_vault(settings: Settings, client: ChainClient, deployment: Deployment, vault: str) -> VaultService:
    """The service of ``vault`` (a sector's name), recording through the vault's own recorder, with what a
    crash left unrecorded recorded first and the writes queued under a seal since lifted applied."""
    vault_name(vault)
    if not vault_recorder_keystore(settings, vault).is_file():
        raise VaultError(f"vault {vault} has no recorder in this deployment: run `qeaims deploy` again")
    identity = dev_vault_recorder(settings, vault)
    outbox = EventOutbox.for_oracle(settings.outbox_dir, identity.address, deployment.deployment_id)
    recorder = EventRecorder(client, identity, outbox)
    service = VaultService(VaultStore(vault_root(settings), vault), recorder,
                           SealWatch(client, vault, max_logs_range=settings.max_logs_range).state,
                           max_logs_range=settings.max_logs_range)
    service.recover()  # what a crashed process left unrecorded is recorded before anything else happens
    if service.store.pending() and not service.seal_state().sealed:
        service.apply_pending()  # writes queued under a seal the controller has lifted since land now
    return service
