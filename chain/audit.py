"""`qeaims audit verify`: re-check every recorded event from chain data alone.

What is checked, all from the logs in the index (which `Indexer.sync` reads with eth_getLogs):
- each oracle's key history: the registration's proof of possession, then every rotation signed
  by the previous key and by the new one; key hashes match the published keys;
- each batch: its events are exactly `firstSeq..lastSeq`, contiguous, in order; its key epoch was
  the oracle's current epoch when it was recorded; its ML-DSA-65 signature verifies over the
  domain-separated batch message with the key of that epoch;
- per oracle, sequence numbers increase by one from batch to batch, with no gap and no repeat.
An event is valid only if its batch, its key and its sequence all check out. A full audit (from
batch 1) also recounts every sensor quarantine (`chain.quarantines`) and every indicator
(`chain.indicators`), and checks that every crisis notice's event counts (`chain.notices`: recorded by
the control room, well formed, the first for its id).

`verify_everything` is what `qeaims audit verify` runs on an index it built itself: the above, plus
- the index against the chain at the audited head (`check_index_against_chain`): the ledger's
  `batchCount` and every oracle's `lastSeq`, the registry's key epoch, key hash and status of every
  oracle and status of every node, the quorum's `proposalCount`, and the hash of every block the
  index checkpointed — so an index that lost or gained a row, or describes another chain, is caught;
- every role change, governance override, repair and status change (`check_governance`);
- the decisions' recounts (`recount_decisions`: the quorum's and the council's, where they exist).

The checks live in one module each; this one runs them in order (`verify_everything`) and keeps
every name importable from `chain.audit`:
- `chain.audit_keys`: each oracle's key history (`key_history`, `KeyEpoch`);
- `chain.audit_batch`: one batch judged (`batch_verifies`);
- `chain.audit_history`: every batch and event, and the quarantines' recount (`verify_chain_history`,
  `AuditReport`);
- `chain.audit_findings`: a finding (`problem`) and the logs the checks below read;
- `chain.audit_index`: `check_index_against_chain`; `chain.audit_governance`: `check_governance`;
  `chain.audit_recounts`: `recount_decisions` (`RECOUNTS`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from chain.audit_batch import batch_verifies
from chain.audit_findings import problem
from chain.audit_governance import check_governance
from chain.audit_history import AuditReport, verify_chain_history
from chain.audit_index import check_index_against_chain
from chain.audit_keys import KeyEpoch, key_history
from chain.audit_recounts import RECOUNTS, recount_decisions
from chain.client import ChainClient
from chain.manifest import Deployment
from chain.registry_history import RegistryHistory

__all__ = [
    "RECOUNTS",
    "AuditReport",
    "KeyEpoch",
    "batch_verifies",
    "check_governance",
    "check_index_against_chain",
    "key_history",
    "problem",
    "recount_decisions",
    "verify_chain_history",
    "verify_everything",
]


def verify_everything(
    db: sqlite3.Connection,
    client: ChainClient,
    deployment: Deployment,
    *,
    head: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> AuditReport:
    """The whole audit on an index synced to `head` (`qeaims audit verify`)."""
    step = progress or (lambda _what, _done, _total: None)
    report = verify_chain_history(db, chain_id=client.chain_id, ledger=deployment.event_ledger,
                                  registry=deployment.registry,
                                  progress=lambda done, total: step("verifying batches", done, total))
    report.head = head
    step("replaying the registry", 0, 1)
    history = RegistryHistory.from_db(db)
    step("checking the index against the chain", 0, 1)
    report.problems += check_index_against_chain(db, client, history, head)
    step("checking roles, overrides and status changes", 0, 1)
    report.problems += check_governance(db, history, deployment)
    step("recounting decisions", 0, 1)
    found, skipped = recount_decisions(db, history, client.chain_id, deployment)
    report.problems += found
    report.skipped += skipped
    return report
