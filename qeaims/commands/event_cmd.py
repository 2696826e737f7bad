"""`qeaims event record`: one hybrid-signed event from a local oracle identity."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from core.errors import ConfigError
from core.kinds import kind_by_name
from qeaims.commands._common import console, load_identity, print_json, settings_of

app = typer.Typer(help="Record hybrid-signed events on the ledger.", no_args_is_help=True)


@app.command()
def record(
    ctx: typer.Context,
    oracle: Annotated[str, typer.Option(help="oracle identity name, e.g. water-2")],
    kind: Annotated[str, typer.Option(help="event kind, e.g. anomaly, fault, telemetry-root")],
    node: Annotated[str, typer.Option(help="subject node id, e.g. pump-1 ('' for none)")] = "",
    payload: Annotated[str, typer.Option(help="JSON object with the event's details")] = "{}",
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Write the event ahead to the oracle's outbox, sign it (ML-DSA-65 + secp256k1) and record it."""
    from chain.connect import connect
    from chain.outbox import EventOutbox
    from chain.recorder import EventRecorder, canonical_payload
    from keys.ids import to_bytes32

    settings = settings_of(ctx)
    kind_value = kind_by_name(kind)
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--payload is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(body, dict):
        raise ConfigError("--payload must be a JSON object, e.g. '{\"score\": 0.93}'")
    node_id = to_bytes32(node) if node else b"\0" * 32
    identity = load_identity(settings, oracle=oracle)
    client, deployment = connect(settings)
    outbox = EventOutbox.for_oracle(settings.outbox_dir, identity.address, deployment.deployment_id)
    try:
        recorder = EventRecorder(client, identity, outbox)
        seq = recorder.record(kind_value, node_id, canonical_payload(body))
    finally:
        outbox.close()
    result = {"oracle": identity.address, "seq": seq, "kind": kind, "node": node}
    if json_out:
        print_json(result)
    else:
        console.print(f"recorded {kind} #{seq} from {oracle} ({identity.address})" + (f" about {node}" if node else ""))
