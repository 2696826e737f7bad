"""`qeaims network generate|allowlist`: a Besu QBFT consortium's files, and its accounts allowlist from the chain.

docs/deploy-besu.md walks an operator through both.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from chain.besu.image import DEFAULT_BESU_IMAGE
from core.config import load_settings
from core.errors import ConfigError
from qeaims.commands import qbft_cmd
from qeaims.commands._common import console, err_console, print_json, settings_of

if TYPE_CHECKING:  # the chain client and the modules below load in the commands that use them
    from chain.besu.accounts import AllowedAccount

app = typer.Typer(help="A Besu QBFT consortium network: generate its files, keep its allowlist in step.",
                  no_args_is_help=True)


def _names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@app.command()
def generate(
    ctx: typer.Context,
    validators: Annotated[int, typer.Option(help="validator nodes (at least 4: QBFT survives f faulty of 3f+1)")],
    out: Annotated[Path, typer.Option(help="new (or empty) folder to write the network into")],
    sectors: Annotated[str | None, typer.Option(
        help="sector operators that run validators, comma-separated, in turn (default: every registered sector)")]
    = None,
    chain_id: Annotated[int, typer.Option(help="the consortium's chain id")] = 20_261,
    block_period: Annotated[int, typer.Option(help="QBFT blockperiodseconds")] = 2,
    request_timeout: Annotated[int, typer.Option(help="QBFT requesttimeoutseconds (round-change timeout)")] = 4,
    epoch_length: Annotated[int, typer.Option(help="QBFT epochlength: blocks after which pending votes reset")]
    = 30_000,
    besu_image: Annotated[str, typer.Option(help="pinned Besu image for the validators")] = DEFAULT_BESU_IMAGE,
    hosts: Annotated[str | None, typer.Option(
        help="each validator's IP or host name, comma-separated (default: fixed addresses on the Compose network; "
             "with --hosts no Compose file is written)")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Write genesis, node keys, configs, permissioning, static nodes and a Compose file for a QBFT network.

    The accounts allowlist holds a fresh deployer and every member identity in the QEAIMS home
    (created where missing), exactly the accounts `qeaims deploy` registers."""
    from chain.besu.generate import NetworkSpec, generate_network
    from chain.besu.genesis import QbftParams
    from chain.consortium import sectors as registered_sectors

    settings = settings_of(ctx)
    spec = NetworkSpec(
        validators=validators,
        sectors=_names(sectors) if sectors is not None else registered_sectors(),
        params=QbftParams(chain_id=chain_id, block_period_s=block_period, request_timeout_s=request_timeout,
                          epoch_length=epoch_length),
        besu_image=besu_image,
        hosts=_names(hosts) if hosts is not None else (),
    )
    with err_console.status("generating keys and reading the member keystores"):
        net = generate_network(settings, spec, out)
    data = {
        "out": str(net.out),
        "chain_id": chain_id,
        "validators": [{"name": v.name, "operator_sector": v.operator_sector, "address": v.key.address,
                        "enode": v.enode} for v in net.validators],
        "deployer": net.deployer,
        "accounts": len(net.accounts),
        "notes": net.notes,
    }
    if json_out:
        print_json(data)
        return
    table = Table(title=f"QBFT network in {net.out} (chain id {chain_id})")
    for column in ("validator", "operator", "address", "host"):
        table.add_column(column)
    for v in net.validators:
        table.add_row(v.name, v.operator_sector, v.key.address, v.host)
    console.print(table)
    console.print(f"{len(net.accounts)} accounts on the allowlist (accounts.json), deployer {net.deployer}.")
    for note in net.notes:
        console.print(f"note: {note}")
    console.print(f"Next: {net.out / 'README.md'} and docs/deploy-besu.md.")


def _nodes_from(path: Path) -> list[str]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not TOML: {exc}") from exc
    nodes = data.get("nodes-allowlist", [])
    if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
        raise ConfigError(f"{path}: nodes-allowlist is not a list of enode URLs")
    return nodes


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)  # a node reloading the file sees the old list or the new, never half of one


@app.command()
def allowlist(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="permissions file to write (replaced atomically)")],
    nodes_from: Annotated[Path | None, typer.Option(
        help="keep the nodes-allowlist of this permissions_config.toml (usually the file being replaced)")] = None,
    include_deployer: Annotated[bool, typer.Option(
        help="keep the deployer on the list (only while a deploy is under way)")] = False,
    rpc_url: Annotated[str | None, typer.Option(
        help="a consortium node's JSON-RPC URL (the same as the global --rpc-url)")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rebuild the accounts allowlist from the live Registry and council.

    Registered, not removed oracles (with the controller and the vaults' recorders) and the current
    governors; then reload each node with perm_reloadPermissionsFromFile. The contracts' addresses
    come from the deployment manifest in the QEAIMS home."""
    from chain.besu.accounts import registry_accounts
    from chain.besu.nodefiles import permissions_config
    from chain.connect import connect

    settings = settings_of(ctx)
    if rpc_url is not None:
        settings = load_settings(home=settings.home, rpc_url_override=rpc_url, scrypt_n=settings.scrypt_n)
    nodes = _nodes_from(nodes_from) if nodes_from is not None else None
    client, deployment = connect(settings)
    accounts: list[AllowedAccount] = registry_accounts(client, deployment, include_deployer=include_deployer,
                                                             max_logs_range=settings.max_logs_range)
    _write_atomically(out, permissions_config(nodes, [a.address for a in accounts]))
    if json_out:
        print_json({"out": str(out), "accounts": [asdict(a) for a in accounts], "nodes": nodes})
        return
    counts: dict[str, int] = {}
    for a in accounts:
        counts[a.role] = counts.get(a.role, 0) + 1
    kept = f"{len(nodes)} nodes" if nodes is not None else "no nodes-allowlist (pass --nodes-from to keep one)"
    console.print(f"{len(accounts)} accounts ({', '.join(f'{n} {r}' for r, n in sorted(counts.items()))}) and "
                  f"{kept} written to {out}; reload every node with perm_reloadPermissionsFromFile.")


# the validator-network model (issue 20): how block time and isolation latency grow with validators
app.command("simulate")(qbft_cmd.simulate)
