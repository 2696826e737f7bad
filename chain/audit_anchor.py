"""An audit's anchor: the head block's number and hash, and the check that the chain still holds it.

`qeaims audit verify` prints an anchor and takes earlier ones back with `--anchor`; the API's
verification job (`POST /audit/verifications`) does the same. Nothing local can tell that a chain's
history was rewritten or cut after an audit (a dev chain's journal truncated and replayed, say); a
hash kept elsewhere can, so both readers check anchors the same way, here.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from chain.audit_findings import problem
from chain.client import ChainClient
from core.errors import ConfigError

__all__ = ["audited_anchor", "check_anchors", "parse_anchors"]

_ANCHOR = re.compile(r"^(\d+):(0x[0-9a-fA-F]{64})$")


def parse_anchors(values: list[str], *, option: str = "--anchor") -> list[tuple[int, str]]:
    """`BLOCK:0xHASH` strings (as an audit printed them) as (number, lower-case hash); `option` names
    where they came from in the error."""
    out = []
    for value in values:
        match = _ANCHOR.match(value.strip())
        if match is None:
            raise ConfigError(f"{option} {value!r} must look like BLOCK:0xHASH (as a previous audit printed it)")
        out.append((int(match.group(1)), match.group(2).lower()))
    return out


def check_anchors(client: ChainClient, anchors: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """Each anchor a previous audit printed must still be in the chain: a chain that no longer holds
    that block, or holds another one at that height, has had its history rewritten or cut (a dev
    chain's journal truncated and replayed, say). Nothing local can tell that; a hash kept elsewhere can."""
    problems = []
    for number, expected in anchors:
        block = client.rpc.call("eth_getBlockByNumber", [hex(number), False])
        actual = None if block is None else str(block["hash"]).lower()
        if actual != expected:
            seen = "no such block" if actual is None else f"block {number} is {actual}"
            problems.append(problem("anchor", f"the chain no longer holds block {number} as {expected} ({seen}): "
                                              "its history was rewritten or cut after that audit", number))
    return problems


def audited_anchor(db: sqlite3.Connection, client: ChainClient, head: int) -> tuple[str, list[dict[str, Any]]]:
    """The anchor of what was audited: the head block's hash as the index read the logs against it
    (its checkpoint), not as the chain says after the audit; and a finding if the chain no longer
    holds that block (its history was replaced while the audit ran, so the anchor would vouch for a
    history nobody audited)."""
    row = db.execute("SELECT hash FROM checkpoints WHERE number = ?", (head,)).fetchone()
    if row is None:
        return "", [problem("anchor", f"the index has no checkpoint for the audited head {head}", head)]
    audited = str(row[0]).lower()
    return f"{head}:{audited}", check_anchors(client, [(head, audited)])
