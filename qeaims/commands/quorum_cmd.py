"""`qeaims isolation propose|vote|show`: the oracle side of the isolation quorum, by hand."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from core.errors import ConfigError
from qeaims.commands._common import console, load_identity, print_json, settings_of

app = typer.Typer(help="Propose and vote on isolations, reintegrations and quarantines.", no_args_is_help=True)

# Each command imports the chain client and the signers (eth_account, py_ecc) itself: every `qeaims`
# command defines all sub-commands when it starts, and most never vote.


@app.command()
def propose(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="isolate, reintegrate or quarantine")],
    target: Annotated[str, typer.Argument(help="node id, or the oracle address for quarantine")],
    oracle: Annotated[str, typer.Option(help="voting oracle identity, e.g. water-1")],
    reason: Annotated[str, typer.Option(help="short reason (≤ 32 characters)")] = "fault",
    evidence: Annotated[list[str] | None, typer.Option(help="evidence event as ORACLE:SEQ (repeatable)")] = None,
) -> None:
    """Open a proposal (or vote on the open one for the same target)."""
    from eth_utils.address import is_address

    from chain.connect import connect
    from chain.quorum import Action, QuorumClient
    from keys.ids import event_id, to_bytes32

    actions = {"isolate": Action.ISOLATE, "reintegrate": Action.REINTEGRATE, "quarantine": Action.QUARANTINE}
    if action not in actions:
        raise ConfigError(f"unknown action {action!r}: choose isolate, reintegrate or quarantine")
    chosen = actions[action]
    if chosen is Action.QUARANTINE:
        if not is_address(target):
            raise ConfigError("quarantine needs the oracle's address (0x + 40 hex digits)")
        target_id = bytes(12) + bytes.fromhex(target[2:])
    else:
        target_id = to_bytes32(target)
    ids = []
    for item in evidence or []:
        oracle_addr, _, seq = item.partition(":")
        if not seq.isdigit():
            raise ConfigError(f"evidence {item!r} must look like 0xORACLE:SEQ")
        ids.append(event_id(oracle_addr, int(seq)))
    settings = settings_of(ctx)
    identity = load_identity(settings, oracle=oracle)
    client, _ = connect(settings)
    quorum = QuorumClient(client)
    proposal_id = quorum.propose(identity, chosen, target_id, to_bytes32(reason), ids)
    view = quorum.view(proposal_id)
    console.print(f"proposal {proposal_id} ({action} {target}): {view.active_votes}/{view.required} votes, {view.state}")


@app.command()
def vote(ctx: typer.Context, proposal: Annotated[int, typer.Argument(min=1)],
         oracle: Annotated[str, typer.Option(help="voting oracle identity")]) -> None:
    """Vote for an open proposal; it executes when the vote completes the quorum."""
    from chain.connect import connect
    from chain.quorum import QuorumClient

    settings = settings_of(ctx)
    identity = load_identity(settings, oracle=oracle)
    client, _ = connect(settings)
    quorum = QuorumClient(client)
    quorum.vote(identity, proposal)
    view = quorum.view(proposal)
    console.print(f"proposal {proposal}: {view.active_votes}/{view.required} votes, {view.state}")


@app.command()
def show(ctx: typer.Context, proposal: Annotated[int, typer.Argument(min=1)],
         json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A proposal's state, votes that still count, and voters."""
    from chain.connect import connect
    from chain.quorum import Action, QuorumClient
    from keys.ids import from_bytes32

    settings = settings_of(ctx)
    client, _ = connect(settings)
    if int(client.call1("IsolationQuorum", "proposalState", proposal)) == 0:
        raise ConfigError(f"there is no isolation proposal {proposal}")
    view = QuorumClient(client).view(proposal)
    target = ("0x" + view.target[12:].hex()) if view.action is Action.QUARANTINE else from_bytes32(view.target)
    data = {"id": view.proposal_id, "action": view.action.name.lower(), "sector": view.sector, "target": target,
            "state": view.state, "votes": view.active_votes, "required": view.required, "voters": list(view.voters)}
    if json_out:
        print_json(data)
        return
    table = Table(title=f"Isolation proposal {proposal}", show_header=False)
    for key, value in data.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console.print(table)
