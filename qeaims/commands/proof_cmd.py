"""`qeaims audit proof`: prove one stored reading against the telemetry root recorded ON-CHAIN.

The oracle's local store supplies the reading, its index and its siblings; the chain supplies the
root (the `telemetry-root` event the store's batch was anchored as, read from the log index). The
leaf is recomputed from the stored reading's bytes, so a reading altered after it was anchored
fails, and so does a batch whose root was never recorded.

`qeaims.commands.audit_cmd` registers `proof` on the `audit` command group; this module imports
nothing from it (so the two do not import each other).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from chain.connect import connect
from core.config import Settings
from core.errors import AuditFailed, ConfigError
from keys.keystore import read_keystore_header
from oracles.merkle import LEAF_SCHEME
from oracles.telemetry import TELEMETRY_ROOT, TelemetryStore, decode_root_payload, telemetry_path
from qeaims.commands._chain_index import synced_index
from qeaims.commands._common import console, keystore_path, print_json, settings_of

__all__ = ["proof"]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _oracle_address(settings: Settings, oracle: str) -> str:
    """`--oracle water-2` (a local keystore, read without the passphrase) or `--oracle 0x…`."""
    if _ADDRESS.match(oracle):
        return oracle
    return read_keystore_header(keystore_path(settings, oracle=oracle)).address


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def proof(
    ctx: typer.Context,
    oracle: Annotated[str, typer.Option(help="the oracle that stored the reading: name (water-2) or address")],
    reading: Annotated[str, typer.Option(help="reading id BATCH:INDEX in that oracle's store, e.g. 3:17")],
    store: Annotated[Path | None, typer.Option(help="telemetry store file (default: under the data directory)")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check one reading's Merkle proof against the root its oracle recorded on-chain."""
    settings = settings_of(ctx)
    address = _oracle_address(settings, oracle)
    path = store if store is not None else telemetry_path(settings.home, address)
    if not path.is_file():
        raise ConfigError(f"no telemetry store for {oracle} at {path}")
    local = TelemetryStore(path, address)
    try:
        evidence = local.proof(reading)
    finally:
        local.close()
    if evidence.seq is None:
        raise AuditFailed(f"batch {evidence.batch} of {oracle} was never handed to the ledger: nothing to prove against")
    client, _ = connect(settings)
    index = synced_index(settings, client)
    try:
        row = index.db.execute(
            "SELECT kind, payload, block, tx_hash FROM events WHERE oracle = ? AND seq = ?",
            (address.lower(), evidence.seq),
        ).fetchone()
    finally:
        index.close()
    if row is None:
        raise AuditFailed(f"event #{evidence.seq} of {address} (batch {evidence.batch}) is not on the chain yet")
    kind, payload, block, tx_hash = int(row[0]), bytes(row[1]), int(row[2]), str(row[3])
    if kind != TELEMETRY_ROOT:
        raise AuditFailed(f"event #{evidence.seq} of {address} is not a telemetry-root event")
    batch, chain_root = decode_root_payload(payload)
    if batch != evidence.batch:
        raise AuditFailed(f"event #{evidence.seq} of {address} anchors batch {batch}, not batch {evidence.batch}")
    ok = evidence.verify(chain_root)
    reason = "" if ok else (
        "the stored reading differs from the one that was anchored" if evidence.leaf != evidence.stored_leaf
        else "the local batch differs from the one that was anchored")
    result: dict[str, Any] = {
        "ok": ok, "reading": evidence.ref, "oracle": address, "seq": evidence.seq, "block": block, "tx": tx_hash,
        "scheme": LEAF_SCHEME, "leaf": _hex(evidence.leaf), "proof": [_hex(p) for p in evidence.proof],
        "root": _hex(chain_root), "local_root": _hex(evidence.root),
        "asset": evidence.reading.asset_id, "sensor": evidence.reading.sensor_id,
        "quantity": evidence.reading.quantity, "value": evidence.reading.value, "unit": evidence.reading.unit,
        "timestamp": evidence.reading.timestamp.isoformat(),
    }
    if not ok:
        result["reason"] = reason
    if json_out:
        print_json(result)
    elif ok:
        r = evidence.reading
        console.print(f"OK reading {evidence.ref}: {r.asset_id} {r.sensor_id} {r.quantity}={r.value:g}{r.unit} "
                      f"at {result['timestamp']} is in the root of event #{evidence.seq} of {address} "
                      f"(block {block}, {len(evidence.proof)} proof steps)", highlight=False, soft_wrap=True)
    if not ok:
        raise AuditFailed(f"reading {evidence.ref} of {oracle} does not match the on-chain root of batch "
                          f"{evidence.batch} (event #{evidence.seq}): {reason}")
