"""`qeaims audit proof`: prove one stored reading against the telemetry root recorded ON-CHAIN.

The check itself is `oracles.proof_check` (the API's `GET /proofs/...` runs it too): the oracle's
local store supplies the reading, its index and its siblings; the chain supplies the root (the
`telemetry-root` event the store's batch was anchored as, read from the log index). The leaf is
recomputed from the stored reading's bytes, so a reading altered after it was anchored fails, and so
does a batch whose root was never recorded.

`qeaims.commands.audit_cmd` registers `proof` on the `audit` command group; this module imports
nothing from it (so the two do not import each other).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from core.config import Settings
from core.errors import AuditFailed
from qeaims.commands._chain_index import synced_index
from qeaims.commands._common import console, keystore_path, print_json, settings_of

__all__ = ["proof"]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _oracle_address(settings: Settings, oracle: str) -> str:
    """`--oracle water-2` (a local keystore, read without the passphrase) or `--oracle 0x…`."""
    if _ADDRESS.match(oracle):
        return oracle
    from keys.keystore import read_keystore_header

    return read_keystore_header(keystore_path(settings, oracle=oracle)).address


def proof(
    ctx: typer.Context,
    oracle: Annotated[str, typer.Option(help="the oracle that stored the reading: name (water-2) or address")],
    reading: Annotated[str, typer.Option(help="reading id BATCH:INDEX in that oracle's store, e.g. 3:17")],
    store: Annotated[Path | None, typer.Option(help="telemetry store file (default: under the data directory)")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check one reading's Merkle proof against the root its oracle recorded on-chain."""
    from chain.connect import connect
    from oracles.proof_check import check_against_chain, local_proof
    from oracles.telemetry import telemetry_path

    settings = settings_of(ctx)
    address = _oracle_address(settings, oracle)
    path = store if store is not None else telemetry_path(settings.home, address)
    evidence = local_proof(path, address, reading, label=oracle)
    client, _ = connect(settings)
    index = synced_index(settings, client)
    try:
        checked = check_against_chain(evidence, address, index.db)
    finally:
        index.close()
    result = checked.as_dict()
    if json_out:
        print_json(result)
    elif checked.ok:
        r = evidence.reading
        console.print(f"OK reading {evidence.ref}: {r.asset_id} {r.sensor_id} {r.quantity}={r.value:g}{r.unit} "
                      f"at {result['timestamp']} is in the root of event #{evidence.seq} of {address} "
                      f"(block {checked.block}, {len(evidence.proof)} proof steps)", highlight=False, soft_wrap=True)
    if not checked.ok:
        raise AuditFailed(f"reading {evidence.ref} of {oracle} does not match the on-chain root of batch "
                          f"{evidence.batch} (event #{evidence.seq}): {checked.reason}")
