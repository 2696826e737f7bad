"""The whole audit on an index built afresh: what `qeaims audit verify` and the API's verification job run.

The index is always built from eth_getLogs in a temporary directory: nothing local is trusted (a
cached index could have been edited in ways no counter shows). The result carries the anchor of what
was audited (`chain.audit_anchor`) and a finding for each earlier anchor the chain no longer holds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from chain.audit import AuditReport, verify_everything
from chain.audit_anchor import audited_anchor, check_anchors
from chain.client import ChainClient
from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.logs import DEFAULT_MAX_LOGS_RANGE
from chain.manifest import Deployment

__all__ = ["audit_afresh"]


def audit_afresh(client: ChainClient, deployment: Deployment, *, anchors: list[tuple[int, str]],
                 progress: Callable[[str, int, int], None] | None = None,
                 max_logs_range: int = DEFAULT_MAX_LOGS_RANGE) -> tuple[AuditReport, str]:
    """(the report, the audited head's anchor `BLOCK:0xHASH`) from a fresh index of the whole chain."""
    step = progress or (lambda _what, _done, _total: None)
    with tempfile.TemporaryDirectory(prefix="qeaims-audit-") as tmp:
        index = Indexer(Path(tmp) / "index.sqlite", client.rpc, deployment, contract_abis(),
                        max_logs_range=max_logs_range)
        try:
            head = index.sync(lambda done, total: step("indexing chain logs", done, total)).to_block
            report = verify_everything(index.db, client, deployment, head=head, progress=step)
            head_anchor, moved = audited_anchor(index.db, client, head)
        finally:
            index.close()
    report.problems += moved + check_anchors(client, anchors)
    return report, head_anchor
