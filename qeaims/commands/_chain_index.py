"""The chain's log index as the auditors' commands read it: synced to the head before each use.

Its own module so that every command that reads the index (`qeaims audit events|verify|proof`,
`qeaims gov`) takes it from here: `qeaims.commands.proof_cmd` used to take it from
`qeaims.commands.audit_cmd`, which imports `proof_cmd` back to register the command (a cycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.progress import Progress

from core.config import Settings
from qeaims.commands._common import err_console

if TYPE_CHECKING:  # the chain client (eth_account, requests) loads when a command reads the index
    from chain.client import ChainClient
    from chain.indexer import Indexer

__all__ = ["synced_index"]


def synced_index(settings: Settings, client: ChainClient, *, show_progress: bool = False) -> Indexer:
    from chain.connect import connect, contract_abis
    from chain.indexer import Indexer

    _, deployment = connect(settings)
    index = Indexer(settings.index_path, client.rpc, deployment, contract_abis(),
                    max_logs_range=settings.max_logs_range)
    if show_progress:
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("indexing chain logs", total=None)
            index.sync(lambda done, total: bar.update(task, completed=done, total=total))
    else:
        index.sync()
    return index
