"""The decisions' recounts, run by the audit where they exist (part of `chain.audit`).

The quorum's (`chain.quorum_audit`) and the council's (`chain.council_audit`) are looked up by
name, so a build without one still audits everything else and says which recount it skipped.
"""

from __future__ import annotations

import importlib
import json
import sqlite3
from collections.abc import Callable
from typing import Any

from chain.audit_findings import Problems, problem
from chain.manifest import Deployment
from chain.registry_history import RegistryHistory

__all__ = ["RECOUNTS", "RecountCall", "recount_decisions"]


# The decisions' recounts. Each entry: (name, module, function, how to call it). A module that does not
# exist yet is skipped (reported in `AuditReport.skipped`), so the audit runs while they are written.
#   chain.quorum_audit.recount_quorum(db, history, chain_id, quorum_address) -> list[problem dict]
#       (the lead: membership captured at ProposalCreated, voters Active at VoteCast, ML-DSA votes)
#   chain.council_audit.recount_council(db, chain_id, council_address) -> list[problem dict]
RecountCall = Callable[[Callable[..., Any], sqlite3.Connection, RegistryHistory, int, Deployment], Any]
RECOUNTS: list[tuple[str, str, str, RecountCall]] = [
    ("quorum", "chain.quorum_audit", "recount_quorum",
     lambda fn, db, history, chain_id, d: fn(db, history, chain_id, d.isolation_quorum)),
    ("council", "chain.council_audit", "recount_council",
     lambda fn, db, history, chain_id, d: [
         {**e, "message": f"{e.get('kind')}: {e.get('detail')}"}
         for e in fn(db, chain_id, d.governance_council) if not e.get("ok", False)]),
]


def recount_decisions(db: sqlite3.Connection, history: RegistryHistory, chain_id: int,
                      deployment: Deployment) -> tuple[Problems, list[str]]:
    """Run every recount in `RECOUNTS`; returns (problems, names of recounts not available)."""
    out: Problems = []
    skipped: list[str] = []
    for name, module_name, function, call in RECOUNTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name != module_name:
                raise  # the module exists but is broken: that must not pass as "skipped"
            skipped.append(f"{name} recount ({module_name}.{function} not available)")
            continue
        fn = getattr(module, function, None)
        if fn is None:
            skipped.append(f"{name} recount ({module_name}.{function} not available)")
            continue
        for found in call(fn, db, history, chain_id, deployment) or []:
            out.append(_as_problem(name, found))
    return out, skipped


def _as_problem(check: str, found: Any) -> dict[str, Any]:
    if not isinstance(found, dict):
        return problem(check, str(found))
    message = found.get("message") or found.get("reason") or json.dumps(found, default=str)
    tx = found.get("tx") or found.get("tx_hash")
    return {**found, **problem(check, str(message), found.get("block"), str(tx) if tx else None)}
