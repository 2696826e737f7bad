"""`qeaims keys new|show|rotate`: local hybrid identities and their on-chain key epoch."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.table import Table

from core.errors import ChainError, ConfigError
from qeaims.commands._common import console, keystore_path, print_json, settings_of

app = typer.Typer(help="Create, inspect and rotate hybrid (secp256k1 + ML-DSA-65) identities.", no_args_is_help=True)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_STATUS = ("none", "active", "quarantined", "removed")


def _role_dir(role: str) -> str:
    if role not in ("oracle", "governor"):
        raise ConfigError(f"unknown role {role!r}: choose oracle or governor")
    return f"{role}s"


@app.command()
def new(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="identity name, e.g. water-5")],
    role: Annotated[str, typer.Option(help="oracle or governor")] = "oracle",
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Generate a new identity and store it encrypted (passphrase from $QEAIMS_PASSPHRASE)."""
    from keys.identity import HybridIdentity
    from keys.keystore import save_keystore

    settings = settings_of(ctx)
    if not _NAME.match(name):
        raise ConfigError(f"invalid name {name!r}: use lowercase letters, digits, '-' or '_' (max 64)")
    path = settings.keystore_dir / _role_dir(role) / f"{name}.json"
    identity = HybridIdentity.generate()
    save_keystore(identity, path, settings.passphrase, label=f"{role} {name}", scrypt_n=settings.scrypt_n)
    key_hash = "0x" + identity.pq_key_hash.hex()
    info = {"name": name, "role": role, "address": identity.address, "key_epoch": identity.key_epoch,
            "pq_key_hash": key_hash, "keystore": str(path)}
    if json_out:
        print_json(info)
    else:
        console.print(f"created {role} {name}: {identity.address} (ML-DSA-65 key hash {key_hash[:18]}…)")
        console.print(f"keystore {path} (mode 0600)")


@app.command()
def show(
    ctx: typer.Context,
    oracle: Annotated[str | None, typer.Option(help="oracle name, e.g. water-2")] = None,
    governor: Annotated[str | None, typer.Option(help="governor name, e.g. water")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Public facts of an identity, and what the registry says about it if the chain is reachable."""
    from chain.connect import connect
    from keys.keystore import read_keystore_header

    settings = settings_of(ctx)
    header = read_keystore_header(keystore_path(settings, oracle=oracle, governor=governor))
    info: dict[str, object] = {
        "address": header.address, "label": header.label, "key_epoch": header.key_epoch,
        "pq_key_hash": "0x" + header.pq_key_hash.hex(), "keystore": str(header.path),
    }
    try:
        client, _ = connect(settings)
        record = client.call1("Registry", "oracle", header.address)
        info["on_chain"] = {
            "status": _STATUS[int(record[4])],
            "key_epoch": int(record[3]),
            "pq_key_hash": "0x" + bytes(record[2]).hex(),
            "sector": bytes(record[0]).rstrip(b"\0").decode(errors="replace"),
        }
    except ChainError as exc:
        info["on_chain"] = f"unknown ({exc})"
    if json_out:
        print_json(info)
        return
    table = Table(title=header.label, show_header=False)
    for key, value in info.items():
        if isinstance(value, dict):
            for k, v in value.items():
                table.add_row(f"on-chain {k}", str(v))
        else:
            table.add_row(key, str(value))
    console.print(table)


@app.command()
def rotate(
    ctx: typer.Context,
    oracle: Annotated[str, typer.Option(help="oracle name, e.g. water-2")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rotate an oracle's ML-DSA key: signed by the old key, proof of possession of the new one."""
    from chain.connect import connect
    from chain.rotation import rotate_oracle_key

    settings = settings_of(ctx)
    path = keystore_path(settings, oracle=oracle)
    client, _ = connect(settings)
    result = rotate_oracle_key(client, path, settings.passphrase)
    if json_out:
        print_json(result.__dict__)
    elif result.tx_hash is None:  # a retry's answer (review s39): say so, or a new request would pass for done
        console.print(f"nothing sent: the rotation of {oracle} ({result.address}) from key epoch {result.old_epoch} "
                      f"to {result.new_epoch}, sent earlier, is on the chain (seen in block {result.block}); run "
                      f"`qeaims keys rotate --oracle {oracle}` again to retire key epoch {result.new_epoch} too")
    else:
        console.print(f"rotated {oracle} ({result.address}) from key epoch {result.old_epoch} to "
                      f"{result.new_epoch} in block {result.block}{' (resumed)' if result.resumed else ''}")
