"""`qeaims gov propose|approve|revoke|queue|execute|emergency|show|list`: every change to the rules
goes through the council.

Proposals keep only the hash of their calls on-chain; `approve`, `execute` and `emergency` read the
calls back from the proposal's `ProposalCreated` log. Approvals are signed with the governor's
ML-DSA-65 key (its keystore). A proposal at threshold is queued for the council's delay; `execute`
waits for its eta when it is near (`--wait`), `emergency` skips it with threshold + 1 approvals, for
calls on the council's emergency allowlist only (`propose emergency-allow` changes it, with the delay).
Both refuse, before sending, a proposal whose approvals with a valid ML-DSA-65 signature (from current
governors, as `qeaims audit verify` recounts them) are below what the council needs: the contract itself
counts secp256k1 approvals only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from core.config import Settings
from core.errors import ConfigError
from qeaims.commands._chain_index import synced_index
from qeaims.commands._common import console, keystore_path, load_identity, print_json, settings_of

if TYPE_CHECKING:  # the chain client, keys and vaults load in the commands that use them
    from chain.client import ChainClient
    from chain.governance import Call, Council
    from keys.identity import HybridIdentity

app = typer.Typer(help="Council proposals: propose, approve, revoke, queue, execute, emergency, show, list.",
                  no_args_is_help=True)
propose_app = typer.Typer(help="Create a council proposal (the proposer approves it at once).", no_args_is_help=True)
app.add_typer(propose_app, name="propose")

Governor = Annotated[str, typer.Option(help="governor identity name, e.g. water")]
Description = Annotated[str | None, typer.Option(help="why; stored on-chain")]

def _address(value: str) -> str:
    from eth_utils.address import is_address, to_checksum_address

    if not is_address(value):
        raise ConfigError(f"{value!r} is not an account address (0x + 40 hex digits)")
    return to_checksum_address(value)


def _submit(ctx: typer.Context, governor: str, calls: list[Call], description: str) -> None:
    gov, _, council = _as_governor(ctx, governor)
    council.simulate(calls)  # a proposal that could never execute is refused here, with the reason
    proposal_id = council.propose(gov, calls, description)
    console.print(f"proposal {proposal_id} created by {governor} (ML-DSA-signed approval 1): {description}")


@propose_app.command("add-sector")
def add_sector(ctx: typer.Context, sector: str, governor: Governor, description: Description = None) -> None:
    """Add a sector beyond the six built in."""
    from keys.ids import to_bytes32

    _submit(ctx, governor, [("Registry", "addSector", [to_bytes32(sector)])], description or f"add sector {sector}")


@propose_app.command("add-operator")
def add_operator(ctx: typer.Context, operator: str, sector: Annotated[str, typer.Option()], governor: Governor,
                 description: Description = None) -> None:
    """Add an operator (utility, hospital group, bank) for a sector."""
    from keys.ids import to_bytes32

    _submit(ctx, governor, [("Registry", "addOperator", [to_bytes32(operator), to_bytes32(sector)])],
            description or f"add operator {operator} to {sector}")


@propose_app.command("register-oracle")
def register_oracle(
    ctx: typer.Context,
    oracle: Annotated[str, typer.Option(help="oracle identity name (its keystore signs the proof of possession)")],
    sector: Annotated[str, typer.Option()],
    operator: Annotated[str, typer.Option()],
    governor: Governor,
    description: Description = None,
) -> None:
    """Register an oracle with its ML-DSA-65 key and proof of possession."""
    from chain.connect import connect
    from keys.hybrid import sign_registration
    from keys.ids import to_bytes32
    from keys.keystore import load_keystore

    settings = settings_of(ctx)
    identity = load_keystore(keystore_path(settings, oracle=oracle), settings.passphrase)
    client, deployment = connect(settings)
    pop = sign_registration(identity, chain_id=client.chain_id, registry=deployment.registry,
                            sector=to_bytes32(sector), operator=to_bytes32(operator))
    call: Call = ("Registry", "registerOracle",
                  [identity.address, to_bytes32(sector), to_bytes32(operator), identity.pq_public_key, pop])
    _submit(ctx, governor, [call], description or f"register oracle {oracle} ({identity.address}) for {sector}")


@propose_app.command("remove-oracle")
def remove_oracle(ctx: typer.Context, account: str, governor: Governor, reason: str = "removed",
                  description: Description = None) -> None:
    """Remove an oracle for good."""
    from keys.ids import to_bytes32

    _submit(ctx, governor, [("Registry", "removeOracle", [_address(account), to_bytes32(reason)])],
            description or f"remove oracle {account}: {reason}")


@propose_app.command("reinstate-oracle")
def reinstate_oracle(ctx: typer.Context, account: str, governor: Governor, reason: str = "reinstated",
                     description: Description = None) -> None:
    """Return a quarantined oracle to service."""
    from keys.ids import to_bytes32

    _submit(ctx, governor, [("Registry", "reinstateOracle", [_address(account), to_bytes32(reason)])],
            description or f"reinstate oracle {account}: {reason}")


@propose_app.command("add-node")
def add_node(
    ctx: typer.Context,
    node: str,
    sector: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option()],
    criticality: Annotated[int, typer.Option(min=1, max=5)],
    governor: Governor,
    depends_on: Annotated[list[str] | None, typer.Option(help="node this one depends on (repeatable)")] = None,
    description: Description = None,
) -> None:
    """Register an infrastructure node and its dependencies."""
    from keys.ids import to_bytes32

    deps = [to_bytes32(d) for d in depends_on or []]
    _submit(ctx, governor, [("Registry", "addNode", [to_bytes32(node), to_bytes32(sector), to_bytes32(kind),
                                                     criticality, deps])],
            description or f"add node {node} ({kind}, {sector})")


@propose_app.command("set-cap")
def set_cap(ctx: typer.Context, basis_points: Annotated[int, typer.Argument(min=1, max=10_000)],
            governor: Governor, description: Description = None) -> None:
    """Set the largest share of a sector's nodes (in basis points) the quorum may isolate at once."""
    from chain.governance_views import override_calls

    override = override_calls("set-cap", basis_points=basis_points)
    _submit(ctx, governor, override.calls, description or override.description)


@propose_app.command("set-window")
def set_window(ctx: typer.Context, seconds: Annotated[int, typer.Argument(min=60, max=7 * 24 * 3600)],
               governor: Governor, description: Description = None) -> None:
    """Set how long an isolation proposal collects votes."""
    _submit(ctx, governor, [("IsolationQuorum", "setVotingWindow", [seconds])],
            description or f"set voting window to {seconds} s")


@propose_app.command("set-floor")
def set_floor(ctx: typer.Context, oracles: Annotated[int, typer.Argument(min=1, max=64)], governor: Governor,
              description: Description = None) -> None:
    """Set the fewest active oracles a sector needs to act on its own (below it, only the council acts)."""
    _submit(ctx, governor, [("IsolationQuorum", "setActiveFloor", [oracles])],
            description or f"set the active-oracle floor to {oracles}")


@propose_app.command("set-quarantine-rate")
def set_quarantine_rate(ctx: typer.Context, limit: Annotated[int, typer.Argument(min=0, max=8)],
                        window: Annotated[int, typer.Argument(min=3600, max=30 * 24 * 3600)], governor: Governor,
                        description: Description = None) -> None:
    """Set how many of its own oracles a sector's quorum may quarantine per WINDOW seconds (0: council only)."""
    _submit(ctx, governor, [("IsolationQuorum", "setQuarantineRate", [limit, window])],
            description or f"set the quarantine rate to {limit} per {window} s")


@propose_app.command("force-isolate")
def force_isolate(ctx: typer.Context, node: str, governor: Governor, reason: str = "override",
                  description: Description = None) -> None:
    """Governance override: isolate a node without the oracle quorum (recorded as an override)."""
    from chain.governance_views import override_calls

    override = override_calls("force-isolate", node=node, reason=reason)
    _submit(ctx, governor, override.calls, description or override.description)


@propose_app.command("force-reintegrate")
def force_reintegrate(ctx: typer.Context, node: str, governor: Governor, reason: str = "override",
                      description: Description = None) -> None:
    """Governance override: return an isolated or repairing node to service."""
    from chain.governance_views import override_calls

    override = override_calls("force-reintegrate", node=node, reason=reason)
    _submit(ctx, governor, override.calls, description or override.description)


@propose_app.command("grant-repair")
def grant_repair(ctx: typer.Context, account: str, governor: Governor, description: Description = None) -> None:
    """Allow an account (the controller) to mark isolated nodes as under repair."""
    from chain.deploy import role

    _submit(ctx, governor, [("IsolationQuorum", "grantRole", [role("REPAIR_ROLE"), _address(account)])],
            description or f"grant REPAIR_ROLE to {account}")


@propose_app.command("vault-unseal")
def vault_unseal(
    ctx: typer.Context,
    sector: Annotated[str, typer.Option(help="whose vault")],
    reason: Annotated[str, typer.Option(help="why the council lifts the seal (on-chain, in the description)")],
    governor: Governor,
) -> None:
    """Unseal a sector's vault by council decision: a no-op call of the council to itself whose description
    names the vault and the seal in force (`vaults.council_unseal`). It counts once executed after the
    delay, and only if that seal is still in force then; never by the emergency path."""
    from vaults.council_unseal import unseal_description
    from vaults.local import vault_name
    from vaults.onchain import SealWatch

    if not reason.strip():
        raise ConfigError("say why with --reason (it goes on-chain, in the proposal's description)")
    vault = vault_name(sector)
    gov, client, council = _as_governor(ctx, governor)
    state = SealWatch(client, vault, max_logs_range=council.max_logs_range).state()
    if not state.sealed:
        raise ConfigError(f"vault {vault} is not sealed: there is nothing for the council to unseal")
    description = unseal_description(vault, state.position, reason)
    calls: list[Call] = [("GovernanceCouncil", "proposalCount", [])]
    council.simulate(calls)
    proposal_id = council.propose(gov, calls, description)
    console.print(f"proposal {proposal_id} created by {governor} (ML-DSA-signed approval 1): unseal vault {vault}, "
                  f"sealed in block {state.block} ({state.reason or 'no reason given'}); approve with `qeaims gov "
                  f"approve {proposal_id}`, execute after the delay with `qeaims gov execute {proposal_id}`")


@propose_app.command("emergency-allow")
def emergency_allow(
    ctx: typer.Context,
    contract: Annotated[str, typer.Argument(help="Registry, EventLedger or IsolationQuorum")],
    function: Annotated[str, typer.Argument(help="function name, e.g. forceIsolate")],
    governor: Governor,
    off: Annotated[bool, typer.Option("--off", help="take it off the allowlist instead")] = False,
    description: Description = None,
) -> None:
    """Put a contract function on the emergency allowlist (or take it off): `gov emergency` runs only
    allowlisted calls. The council's own functions and role changes can never be put on it."""
    from chain.connect import connect
    from chain.governance import Council

    settings = settings_of(ctx)
    client, _ = connect(settings)
    if contract not in ("Registry", "EventLedger", "IsolationQuorum"):
        raise ConfigError(f"{contract!r}: the emergency allowlist names Registry, EventLedger or IsolationQuorum "
                          "functions (never the council's own)")
    if function not in client.abi(contract).functions:
        raise ConfigError(f"{contract} has no function {function!r}")
    calls = Council(client).emergency_allow([(contract, function)], allowed=not off)
    _submit(ctx, governor, calls,
            description or f"emergency allowlist: {'remove' if off else 'add'} {contract}.{function}")


@propose_app.command("set-threshold")
def set_threshold(ctx: typer.Context, threshold: Annotated[int, typer.Argument(min=1)], governor: Governor,
                  description: Description = None) -> None:
    """Change how many governors must approve a proposal."""
    _submit(ctx, governor, [("GovernanceCouncil", "changeThreshold", [threshold])],
            description or f"set council threshold to {threshold}")


@propose_app.command("set-delay")
def set_delay(ctx: typer.Context, seconds: Annotated[int, typer.Argument(min=1, max=30 * 24 * 3600)],
              governor: Governor, description: Description = None) -> None:
    """Change the council's timelock (seconds between reaching the threshold and executing)."""
    _submit(ctx, governor, [("GovernanceCouncil", "setDelay", [seconds])],
            description or f"set council delay to {seconds} s")


@propose_app.command("add-governor")
def add_governor(
    ctx: typer.Context,
    newcomer: Annotated[str, typer.Option(help="governor identity name whose keystore holds the new governor's keys")],
    governor: Governor,
    description: Description = None,
) -> None:
    """Add a governor with its ML-DSA-65 key and proof of possession (signed here by its keystore)."""
    from chain.connect import connect
    from chain.governance import Council
    from keys.council_messages import sign_governor_key

    settings = settings_of(ctx)
    identity = load_identity(settings, governor=newcomer)
    client, deployment = connect(settings)
    epoch = Council(client).key_epoch(identity.address) + 1
    pop = sign_governor_key(identity, chain_id=client.chain_id, council=deployment.governance_council, key_epoch=epoch)
    _submit(ctx, governor, [("GovernanceCouncil", "addGovernor", [identity.address, identity.pq_public_key, pop])],
            description or f"add governor {newcomer} ({identity.address}), key epoch {epoch}")


@propose_app.command("remove-governor")
def remove_governor(ctx: typer.Context, account: str, governor: Governor, description: Description = None) -> None:
    """Remove a governor (its approvals stop counting at once)."""
    _submit(ctx, governor, [("GovernanceCouncil", "removeGovernor", [_address(account)])],
            description or f"remove governor {account}")


def _status(client: Any, council: Council, proposal: int) -> str:
    approvals = int(client.call1("GovernanceCouncil", "approvals", proposal))
    state = council.state(proposal).lower()
    eta = council.eta(proposal)
    return f"{approvals} approvals, state {state}" + (f", executable from unix time {eta}" if state == "queued" else "")


def _as_governor(ctx: typer.Context, governor: str) -> tuple[HybridIdentity, ChainClient, Council]:
    """The governor's identity, a client on the deployment, and the council it acts in."""
    from chain.connect import connect
    from chain.governance import Council

    settings = settings_of(ctx)
    gov = load_identity(settings, governor=governor)
    client, _ = connect(settings)
    return gov, client, Council(client, max_logs_range=settings.max_logs_range)


def _require_valid_approvals(settings: Settings, client: ChainClient, proposal: int, *, emergency: bool) -> None:
    """Refuse to execute on approvals the recount does not count (the contract counts secp256k1 approvals
    only; `chain.governance_views.approval_count`): one `error:` line, nothing sent. An unknown proposal
    is left to the council, which names it."""
    from chain.governance_views import approval_count

    if proposal > int(client.call1("GovernanceCouncil", "proposalCount")):
        return
    index = synced_index(settings, client)
    try:
        count = approval_count(index.db, client, proposal, emergency=emergency)
    finally:
        index.close()
    if not count.enough:
        raise ConfigError(count.refusal())


@app.command()
def approve(ctx: typer.Context, proposal: Annotated[int, typer.Argument(min=1)], governor: Governor) -> None:
    """Approve a proposal as a governor: signs, with its ML-DSA key, the hash of the calls it read from the log."""
    gov, client, council = _as_governor(ctx, governor)
    council.approve(gov, proposal)
    console.print(f"{governor} approved proposal {proposal}: {_status(client, council, proposal)}")


@app.command()
def revoke(ctx: typer.Context, proposal: Annotated[int, typer.Argument(min=1)], governor: Governor) -> None:
    """Withdraw an approval; below the threshold the proposal leaves the queue."""
    gov, client, council = _as_governor(ctx, governor)
    council.revoke(gov, proposal)
    console.print(f"{governor} revoked its approval of proposal {proposal}: {_status(client, council, proposal)}")


@app.command()
def queue(ctx: typer.Context, proposal: Annotated[int, typer.Argument(min=1)], governor: Governor) -> None:
    """Queue a proposal that reached the threshold through a change of the council (state succeeded)."""
    gov, client, council = _as_governor(ctx, governor)
    council.queue(gov, proposal)
    console.print(f"proposal {proposal} queued: {_status(client, council, proposal)}")


@app.command()
def execute(ctx: typer.Context, proposal: Annotated[int, typer.Argument(min=1)], governor: Governor,
            wait: Annotated[float, typer.Option(help="seconds to wait for a queued proposal's eta")] = 30.0) -> None:
    """Execute a proposal whose timelock has passed (the calls are read back from its log)."""
    from chain.connect import connect
    from chain.governance import Council
    from vaults.council_unseal import parse_unseal
    from vaults.onchain import SealWatch

    settings = settings_of(ctx)
    gov = load_identity(settings, governor=governor)
    client, _ = connect(settings)
    _require_valid_approvals(settings, client, proposal, emergency=False)
    council = Council(client, max_logs_range=settings.max_logs_range)
    receipt = council.execute(gov, proposal, wait_s=wait)
    console.print(f"proposal {proposal} executed in block {int(receipt['blockNumber'], 16)}")
    logged = council.proposal(proposal)
    unseal = parse_unseal(council.address, logged.targets, logged.values, logged.calldatas, logged.description,
                          logged.calls_hash)
    if unseal is not None:
        state = SealWatch(client, unseal.vault, max_logs_range=settings.max_logs_range).state()
        if state.proposal == proposal:
            console.print(f"vault {unseal.vault} unsealed by the council; its queued writes land at its next command "
                          "on its host")
        else:
            console.print(f"vault {unseal.vault}: this unseal lifted nothing (the seal it names, block "
                          f"{unseal.seal[0]}, is no longer the one in force)")


@app.command()
def emergency(ctx: typer.Context, proposal: Annotated[int, typer.Argument(min=1)], governor: Governor,
              reason: Annotated[str, typer.Option(help="why the delay cannot be waited out; recorded on-chain")]) -> None:
    """Execute without the timelock: needs threshold + 1 approvals and every call on the emergency
    allowlist (never the council itself or a role change), and is recorded as EmergencyExecuted with
    the reason."""
    from chain.connect import connect
    from chain.governance import Council

    settings = settings_of(ctx)
    gov = load_identity(settings, governor=governor)
    client, _ = connect(settings)
    _require_valid_approvals(settings, client, proposal, emergency=True)
    receipt = Council(client, max_logs_range=settings.max_logs_range).execute_emergency(gov, proposal, reason)
    console.print(f"proposal {proposal} executed in an emergency in block {int(receipt['blockNumber'], 16)}: {reason}")


@app.command()
def show(ctx: typer.Context, proposal: Annotated[int, typer.Argument(min=1)],
         json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A proposal's calls (from its log), whether they hash to what the council stores, and its state."""
    from chain.connect import connect
    from chain.governance_views import proposal_row

    settings = settings_of(ctx)
    client, _ = connect(settings)
    row = proposal_row(client, proposal, max_logs_range=settings.max_logs_range)
    call_rows = row["calls"]
    if json_out:
        print_json(row)
        return
    for key in ("id", "proposer", "description", "state", "approvals", "eta", "calls_hash", "hash_matches"):
        console.print(f"{key}: {row[key]}")
    for call in call_rows:
        allowed = "on the emergency allowlist" if call["emergency_allowed"] else "not on the emergency allowlist"
        console.print(f"  call {call['target']} {call['selector']} ({call['bytes']} bytes, value {call['value']}; "
                      f"{allowed})")


@app.command("list")
def list_proposals(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every council proposal with its approvals and state."""
    from chain.connect import connect
    from chain.governance_views import proposal_rows

    settings = settings_of(ctx)
    client, _ = connect(settings)
    index = synced_index(settings, client)
    try:
        rows = proposal_rows(client, index.db)
    finally:
        index.close()
    if json_out:
        print_json(rows)
        return
    threshold = int(client.call1("GovernanceCouncil", "threshold"))
    delay = int(client.call1("GovernanceCouncil", "delay"))
    table = Table(title=f"Council proposals (threshold {threshold}, delay {delay} s)")
    for column in ("id", "state", "approvals", "calls", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["id"]), row["state"], str(row["approvals"]), str(row["calls"]), row["description"])
    console.print(table)
