"""`qeaims chain up|down|status` and `qeaims deploy`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from core.errors import ConfigError, DeploymentMissing
from qeaims.commands._common import console, print_json, settings_of

app = typer.Typer(help="Start, stop and inspect the embedded development chain (Anvil).", no_args_is_help=True)

# Each command imports the chain modules it uses (web3-style clients, eth_account, requests): every
# `qeaims` command defines all sub-commands when it starts, and most never touch the chain.


@app.command()
def up(ctx: typer.Context) -> None:
    """Start the embedded chain (state persisted under the data directory) unless it runs already."""
    from chain.node import start_anvil

    settings = settings_of(ctx)
    status = start_anvil(settings)
    console.print(f"chain up at {status.rpc_url} (chain id {status.chain_id}, block {status.block_number}); "
                  f"journal {status.journal} (through block {status.journaled_block})")


@app.command()
def down(ctx: typer.Context, hard: Annotated[bool, typer.Option(help="kill Anvil at once, as a crash would")] = False) -> None:
    """Stop the embedded chain; the journal catches up to the last block first."""
    from chain.node import stop_anvil

    settings = settings_of(ctx)
    if stop_anvil(settings, hard=hard):
        console.print("chain stopped")
    else:
        console.print("no embedded chain was running")


@app.command()
def status(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Is the chain up, at which block, and is QEAIMS deployed on it?"""
    from chain.manifest import load_deployment
    from chain.node import chain_status

    settings = settings_of(ctx)
    st = chain_status(settings)
    try:
        deployment = load_deployment(settings.manifest_path)
    except DeploymentMissing:
        deployment = None
    data = {
        "running": st.running,
        "rpc_url": st.rpc_url,
        "pid": st.pid,
        "chain_id": st.chain_id,
        "block": st.block_number,
        "journal": str(st.journal),
        "journaled_block": st.journaled_block,
        "journal_keeper": "running" if st.keeper_running else "stopped",
        "deployment": deployment.addresses() if deployment else None,
    }
    if json_out:
        print_json(data)
    else:
        table = Table(title="QEAIMS chain", show_header=False)
        for key, value in data.items():
            if key == "deployment" and isinstance(value, dict):
                for name, address in value.items():
                    table.add_row(name, address)
            else:
                table.add_row(key, str(value))
        console.print(table)
    if not st.running:
        raise typer.Exit(3)


@app.command()
def fund(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="account to fund")],
    ether: Annotated[float, typer.Option(min=0.001, max=10_000, help="amount in ETH")] = 1000.0,
) -> None:
    """Development chain only: send gas money from the dev deployer account to an account."""
    from eth_utils.address import is_address, to_checksum_address

    from chain.connect import connect
    from chain.deploy import dev_deployer

    settings = settings_of(ctx)
    if not is_address(address):
        raise ConfigError(f"{address!r} is not an account address (0x + 40 hex digits)")
    client, _ = connect(settings)
    receipt = client.wait(client.send_raw(dev_deployer(), to=to_checksum_address(address), value=int(ether * 10**18),
                                          gas=21_000, label="fund"))
    console.print(f"funded {address} with {ether:g} ETH in block {int(receipt['blockNumber'], 16)}")


def deploy(
    ctx: typer.Context,
    deployer_key: Annotated[Path | None, typer.Option(
        help="deploy from this account (a Besu-style key file: 0x + 64 hex) on the node at --rpc-url instead of "
             "Anvil's development account on the embedded chain")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Deploy the contracts and the development consortium (6 sectors × 4 oracles, 6 governors).

    Starts the embedded chain if it is not running, unless --deployer-key names the account of a
    consortium chain (`qeaims network generate` writes one): then it deploys on the node at
    --rpc-url and never touches Anvil. Keystores go under the data directory.
    """
    from eth_account import Account

    from chain.besu.nodekeys import read_key_file
    from chain.deploy import deploy_dev_consortium
    from chain.node import rpc_block_number, start_anvil

    settings = settings_of(ctx)
    deployer = None
    if deployer_key is not None:
        if settings.rpc_url_override is None:
            raise ConfigError("--deployer-key deploys on a consortium node: give its URL with the global --rpc-url")
        deployer = Account.from_key(read_key_file(deployer_key.read_text()).private_key)
        rpc_block_number(settings.rpc_url)  # one plain error line if the node does not answer
    else:
        start_anvil(settings)
    with console.status("deploying") as spinner:
        _, deployment = deploy_dev_consortium(settings, progress=lambda msg: spinner.update(msg), deployer=deployer)
    if json_out:
        print_json(deployment.model_dump())
        return
    table = Table(title=f"QEAIMS deployed on chain {deployment.chain_id}")
    table.add_column("contract")
    table.add_column("address")
    for name, address in deployment.addresses().items():
        table.add_row(name, address)
    console.print(table)
    console.print(f"manifest: {settings.manifest_path}; keystores: {settings.keystore_dir}")


def demo(ctx: typer.Context) -> None:
    """Run the ledger core on the embedded chain, step by step, and leave the chain running."""
    from core.errors import AuditFailed
    from qeaims.demo_ledger import DemoStep, run_ledger_demo

    settings = settings_of(ctx)
    table = Table(title="QEAIMS ledger demo")
    table.add_column("step")
    table.add_column("what happened on-chain", overflow="fold")
    table.add_column("s", justify="right")

    def show(step: DemoStep) -> None:
        console.print(f"[bold]{step.title}[/bold]: {step.detail} ({step.seconds:.1f} s)")
        table.add_row(step.title, step.detail, f"{step.seconds:.1f}")

    result = run_ledger_demo(settings, show)
    console.print(table)
    console.print(f"The chain keeps running at {settings.rpc_url}. Try `.venv/bin/qeaims audit events --sector water` "
                  "or `.venv/bin/qeaims audit verify`; stop it with `.venv/bin/qeaims chain down`.")
    if result.audit is not None and not result.audit.ok:
        raise AuditFailed(f"{len(result.audit.invalid)} records do not verify")
