"""`qeaims vault ...`: a sector's isolated vault (docs/cyber.md): custody, records, reads with reasons,
seals, crypto-shredding, and the auditor's check of the files against the chain."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from core.errors import AuditFailed, ConfigError
from core.sectors import Sector
from qeaims.commands._common import (
    console,
    err_console,
    print_json,
    record_as_controller,
    sector_help,
    settings_of,
)
from vaults.store import VaultError, VaultStore

if TYPE_CHECKING:  # the chain client and the modules below load in the commands that use them
    from vaults.reader_keys import ReaderKey
    from vaults.service import VaultService
    from vaults.verify import VaultReport

app = typer.Typer(help="Sector vaults: encrypted records, reads recorded on-chain, seals and audits.",
                  no_args_is_help=True)

_AS = typer.Option("--as", help="the reader's name (its key file is keystores/vault-readers/SECTOR/NAME.json)")


def _vault(name: str) -> str:
    names = [s.value for s in Sector]
    if name not in names:
        raise ConfigError(f"no vault {name!r}: each sector has one ({', '.join(names)})")
    return name


def _open(ctx: typer.Context, sector: str) -> VaultService:
    from chain.connect import connect
    from vaults.local import open_vault

    vault = _vault(sector)  # a wrong name is said before anything is asked of the chain
    settings = settings_of(ctx)
    client, deployment = connect(settings)
    return open_vault(settings, client, deployment, vault)


PASSPHRASE_ENV = "QEAIMS_VAULT_PASSPHRASE"
NEW_PASSPHRASE_ENV = "QEAIMS_VAULT_NEW_PASSPHRASE"


def _passphrase(env: str, whose: str) -> str:
    """A vault identity's own passphrase, never the deployment's: with one passphrase for every key on the
    host, whoever runs qeaims there could act as any reader (the review's V18)."""
    value = os.environ.get(env, "")
    if len(value) < 8:
        raise ConfigError(f"set {env} to {whose} (at least 8 characters; each identity has its own)")
    return value


def _new_reader_key(ctx: typer.Context, vault: str, name: str, role: str) -> ReaderKey:
    from vaults.local import reader_key_path
    from vaults.reader_keys import ReaderKey, save_reader_key

    settings = settings_of(ctx)
    key = ReaderKey.generate(vault, name, role)
    save_reader_key(key, reader_key_path(settings, vault, name),
                    _passphrase(NEW_PASSPHRASE_ENV, f"the passphrase that will protect {name}'s new key"),
                    scrypt_n=settings.scrypt_n)
    return key


def _me(ctx: typer.Context, vault: str, name: str) -> ReaderKey:
    from vaults.local import reader_key_path
    from vaults.reader_keys import load_reader_key

    settings = settings_of(ctx)
    path = reader_key_path(settings, vault, name)
    key = load_reader_key(path, _passphrase(PASSPHRASE_ENV, f"the passphrase of {name}'s vault key"))
    if key.vault != vault or key.reader != name:
        raise VaultError(f"the key file holds {key.reader} of vault {key.vault}, not {name} of {vault}")
    return key


@app.command()
def init(
    ctx: typer.Context,
    sector: Annotated[str, typer.Argument(help=sector_help("whose vault"))],
    custodian: Annotated[str, typer.Option(help="the custodian's name (its key file is created)")] = "custodian",
) -> None:
    """Create the sector's vault: a sector key (epoch 1) wrapped for its custodian's new ML-KEM-768 key
    (protected by the passphrase in QEAIMS_VAULT_NEW_PASSPHRASE)."""
    from vaults.local import reader_key_path

    service = _open(ctx, sector)
    if service.store.readers()[0]:
        raise VaultError(f"vault {sector} exists already")
    key = _new_reader_key(ctx, service.vault, custodian, "custodian")
    service.create(key)
    console.print(f"vault {sector} created; custodian {custodian}'s key: "
                  f"{reader_key_path(settings_of(ctx), sector, custodian)}")


@app.command()
def grant(
    ctx: typer.Context,
    sector: Annotated[str, typer.Argument(help=sector_help("whose vault"))],
    reader: Annotated[str, typer.Option(help="the new reader's name")],
    role: Annotated[str, typer.Option(help="custodian, writer, reader or auditor")],
    public_key: Annotated[Path | None, typer.Option(help="the reader's ML-KEM-768 public key (hex) it sent you; "
                                                         "without it a key file is made here")] = None,
    as_: Annotated[str, _AS] = "custodian",
) -> None:
    """Register an identity (only the custodian may; QEAIMS_VAULT_PASSPHRASE opens the custodian's key); the
    roles that may read get the sector key wrapped for it. Without --public-key its key is made here,
    protected by QEAIMS_VAULT_NEW_PASSPHRASE, to be handed to it."""
    from vaults.service import VaultRoles

    if role not in VaultRoles().known:
        raise VaultError(f"unknown role {role!r}: choose one of {', '.join(sorted(VaultRoles().known))}")
    service = _open(ctx, sector)
    custodian = _me(ctx, service.vault, as_)
    if public_key is not None:
        try:
            raw = bytes.fromhex(public_key.read_text().strip())
        except ValueError:
            raise VaultError(f"{public_key} does not hold a hex ML-KEM-768 public key") from None
        service.grant(custodian, (reader, role, raw))
    else:
        if reader in service.store.members():
            raise VaultError(f"{reader} is a reader of vault {sector} already")
        service.grant(custodian, _new_reader_key(ctx, service.vault, reader, role))
    console.print(f"{reader} may now act as {role} in vault {sector}")


@app.command()
def revoke(
    ctx: typer.Context,
    sector: Annotated[str, typer.Argument(help=sector_help("whose vault"))],
    reader: Annotated[str, typer.Option(help="the identity to revoke")],
    reason: Annotated[str, typer.Option(help="why (recorded on-chain)")] = "",
    as_: Annotated[str, _AS] = "custodian",
) -> None:
    """Revoke an identity (only the custodian may; QEAIMS_VAULT_PASSPHRASE opens the custodian's key). One that
    held the sector key is revoked by a rotation: a new sector key for the key holders that remain, every
    live record key re-wrapped under it, so its key opens nothing here any more. Recorded on-chain."""
    if not reason.strip():
        raise ConfigError("say why with --reason (it goes on-chain)")
    service = _open(ctx, sector)
    custodian = _me(ctx, service.vault, as_)
    before, _ = service.store.readers()
    event = service.revoke(custodian, reader, reason)
    after, holders = service.store.readers()
    rotated = f"sector key rotated to epoch {after}, " if after != before else ""
    console.print(f"{reader} revoked from vault {sector}: {rotated}{len(holders)} key holder(s) remain; recorded "
                  f"on-chain ({event})")


@app.command()
def write(
    ctx: typer.Context,
    sector: Annotated[str, typer.Argument(help=sector_help("whose vault"))],
    record: Annotated[str, typer.Argument(help="the record's id, e.g. adm-2291")],
    as_: Annotated[str, _AS],
    text: Annotated[str | None, typer.Option(help="the record's content")] = None,
    file: Annotated[Path | None, typer.Option(help="read the content from this file ('-': standard input)")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Encrypt a record (a new version), store it and commit its hash on-chain (queued while sealed)."""
    if (text is None) == (file is None):
        raise ConfigError("give the content with exactly one of --text and --file")
    content = text.encode() if text is not None else _bounded(file)  # type: ignore[arg-type]
    service = _open(ctx, sector)
    receipt = service.write(_me(ctx, service.vault, as_), record, content)
    if json_out:
        print_json(vars(receipt))
    elif receipt.status == "queued":
        console.print(f"vault {sector} is sealed: {record} v{receipt.version} is encrypted and queued until the unseal")
    else:
        console.print(f"{record} v{receipt.version} stored; commitment {receipt.commitment[:16]}… on-chain "
                      f"({receipt.event})")


def _bounded(file: Path) -> bytes:
    """A record's content from a file or standard input, read no further than the largest record allows."""
    from vaults.service import MAX_RECORD_BYTES

    with (sys.stdin.buffer if str(file) == "-" else file.open("rb")) as source:
        content = source.read(MAX_RECORD_BYTES + 1)
    if len(content) > MAX_RECORD_BYTES:
        raise VaultError(f"{file} holds more than {MAX_RECORD_BYTES} bytes: a vault record holds at most that")
    return content


@app.command()
def read(
    ctx: typer.Context,
    sector: Annotated[str, typer.Argument(help=sector_help("whose vault"))],
    record: Annotated[str, typer.Argument(help="the record's id")],
    as_: Annotated[str, _AS],
    reason: Annotated[str, typer.Option(help="who asked for it and why (recorded as a keyed hash)")] = "",
    version: Annotated[int | None, typer.Option(min=1, help="a version (default: the newest)")] = None,
    out: Annotated[Path | None, typer.Option(help="write the content here instead of printing it")] = None,
) -> None:
    """Read a record: the read is recorded on-chain first, and nothing is shown if the chain cannot take it."""
    if not reason.strip():
        raise VaultError("a read needs a reason (--reason): who asked for it and why; it is kept as a keyed hash")
    service = _open(ctx, sector)
    result = service.read(_me(ctx, service.vault, as_), record, reason, version)
    err_console.print(f"read of {record} v{result.version} recorded on-chain ({result.event})")
    if out is not None:
        out.write_bytes(result.content)
    else:
        sys.stdout.buffer.write(result.content + (b"" if result.content.endswith(b"\n") else b"\n"))


@app.command()
def shred(
    ctx: typer.Context,
    sector: Annotated[str, typer.Argument(help=sector_help("whose vault"))],
    record: Annotated[str, typer.Argument(help="the record's id")],
    as_: Annotated[str, _AS] = "custodian",
    yes: Annotated[bool, typer.Option("--yes", help="confirm: the record can never be read again")] = False,
) -> None:
    """Crypto-shred a record: its keys are destroyed; the chain still proves it existed."""
    if not yes:
        raise ConfigError(f"shredding {record} cannot be undone: add --yes to confirm")
    service = _open(ctx, sector)
    event = service.shred(_me(ctx, service.vault, as_), record)
    console.print(f"{record} shredded; recorded on-chain ({event})")


def _seal(ctx: typer.Context, sector: str, sealed: bool, reason: str) -> None:
    """Record a seal or an unseal with the controller's identity. Runs where the controller's key is (the
    control room), not the vault's host: it reads the seal from the chain and opens no vault."""
    from chain.connect import connect
    from vaults.onchain import SealWatch, seal_payload

    if not reason.strip():
        raise ConfigError("say why with --reason (it goes on-chain)")
    vault = _vault(sector)
    settings = settings_of(ctx)
    client, _ = connect(settings)
    if SealWatch(client, vault, max_logs_range=settings.max_logs_range).state().sealed == sealed:
        raise VaultError(f"vault {sector} is {'sealed' if sealed else 'not sealed'} already")
    record_as_controller(settings, "vault-seal", vault, json.loads(seal_payload(vault, sealed, reason)))


@app.command()
def seal(
    ctx: typer.Context,
    sector: Annotated[str, typer.Argument(help=sector_help("whose vault"))],
    reason: Annotated[str, typer.Option(help="why (recorded on-chain)")] = "",
) -> None:
    """Seal a vault (reads refused, writes queued), signed by the controller's identity (REPAIR_ROLE)."""
    _seal(ctx, sector, True, reason)
    console.print(f"vault {sector} sealed")


@app.command()
def unseal(
    ctx: typer.Context,
    sector: Annotated[str, typer.Argument(help=sector_help("whose vault"))],
    reason: Annotated[str, typer.Option(help="why (recorded on-chain)")] = "",
) -> None:
    """Unseal a vault (controller identity: the control room's order). The writes queued meanwhile land at
    the vault's next command on its host; where the vault's files are on this machine too, that is now.
    The governors' council unseals by proposal instead: `qeaims gov propose vault-unseal`."""
    from vaults.local import vault_root

    _seal(ctx, sector, False, reason)
    if (vault_root(settings_of(ctx)) / sector).is_dir():
        before = len(VaultStore(vault_root(settings_of(ctx)), sector).pending())
        _open(ctx, sector)  # opening a vault applies what was queued under a lifted seal
        console.print(f"vault {sector} unsealed; {before} queued write(s) stored and committed")
    else:
        console.print(f"vault {sector} unsealed; its queued writes land at its next command on its host")


@app.command()
def status(
    ctx: typer.Context,
    sector: Annotated[str, typer.Argument(help=sector_help("whose vault"))],
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A vault's seal as the chain says it (by the controller or a council proposal, and why), the council's
    unseal proposals for it, and, where its files are here, its sector-key epoch, key holders, an
    unfinished rotation and queued writes. Changes nothing."""
    from chain.connect import connect
    from chain.governance import Council
    from vaults.local import vault_root
    from vaults.onchain import SealWatch

    vault = _vault(sector)
    settings = settings_of(ctx)
    client, _ = connect(settings)
    watch = SealWatch(client, vault, max_logs_range=settings.max_logs_range)
    state = watch.state()
    council = Council(client, max_logs_range=settings.max_logs_range)
    body: dict[str, Any] = {
        "vault": vault, "sealed": state.sealed, "reason": state.reason, "block": state.block, "by": state.by,
        "council_proposals": [{"proposal": pid, "state": council.state(pid).lower(), "seal_block": p.seal[0],
                               "names_current_seal": state.sealed and p.seal == state.position, "reason": p.reason}
                              for pid, p in sorted(watch.unseal_proposals().items())]}
    if (vault_root(settings) / vault).is_dir():
        store = VaultStore(vault_root(settings), vault)
        epoch, holders = store.readers()
        body.update(epoch=epoch, key_holders=sorted(holders), identities=len(store.members()),
                    rotation_unfinished=store.previous_readers() is not None, queued_writes=len(store.pending()))
    if json_out:
        print_json(body)
        return
    console.print(f"vault {vault}: " + (f"sealed since block {state.block} by {state.by} ({state.reason})"
                                        if state.sealed else "not sealed" + (
                                            f" (unsealed in block {state.block} by {state.by}: {state.reason})"
                                            if state.block else "")), markup=False)
    for p in body["council_proposals"]:
        console.print(f"  council proposal {p['proposal']} ({p['state']}): unseal the seal of block {p['seal_block']}"
                      f"{'' if p['names_current_seal'] else ' (not the seal in force)'}: {p['reason']}", markup=False)
    if "epoch" in body:
        console.print(f"  sector key epoch {body['epoch']}, key holders: {', '.join(body['key_holders'])}; "
                      f"{body['queued_writes']} queued write(s)"
                      + ("; a rotation is unfinished (the next key holder's command finishes it)"
                         if body["rotation_unfinished"] else ""), markup=False)


@app.command()
def verify(
    ctx: typer.Context,
    sectors: Annotated[list[str] | None, typer.Argument(help="vaults to check (default: every vault here)")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check each vault's files against the chain: no record altered or missing, every read on-chain.

    Holds no key and changes nothing: the index is built afresh from eth_getLogs in a temporary folder."""
    from chain.connect import connect, contract_abis
    from chain.indexer import Indexer
    from vaults.local import vault_root
    from vaults.verify import verify_vault

    settings = settings_of(ctx)
    root = vault_root(settings)
    names = [_vault(s) for s in sectors] if sectors else sorted(
        p.name for p in root.iterdir() if p.is_dir() and p.name in {s.value for s in Sector}) if root.is_dir() else []
    if not names:
        raise VaultError(f"no vault under {root}: create one with `qeaims vault init SECTOR`")
    client, deployment = connect(settings)
    reports: list[VaultReport] = []
    with Progress(console=err_console, transient=True, disable=json_out) as bar, \
            tempfile.TemporaryDirectory(prefix="qeaims-vault-verify-") as tmp:
        task = bar.add_task("indexing chain logs", total=None)
        index = Indexer(Path(tmp) / "index.sqlite", client.rpc, deployment, contract_abis(),
                        max_logs_range=settings.max_logs_range)
        try:
            index.sync(lambda done, total: bar.update(task, completed=done, total=total or None))
            for name in names:
                if not (root / name).is_dir():
                    raise VaultError(f"vault {name} has no files under {root}")
                bar.update(task, description=f"checking vault {name}")
                reports.append(verify_vault(index.db, VaultStore(root, name), chain_id=client.chain_id,
                                            ledger=deployment.event_ledger, registry=deployment.registry,
                                            council=deployment.governance_council))
        finally:
            index.close()
    _print_reports(reports, json_out)
    bad = [r for r in reports if not r.ok]
    if bad:
        raise AuditFailed(f"{', '.join(r.vault for r in bad)}: the vault does not match the chain")


def _summary(report: VaultReport) -> dict[str, Any]:
    return {"vault": report.vault, "records": report.records, "tampered": len(report.tampered),
            "missing": len(report.missing), "uncommitted": len(report.uncommitted),
            "unshredded": len(report.unshredded), "keys_missing": len(report.keys_missing),
            "reads_logged": report.reads_logged,
            "reads_on_chain": report.reads_on_chain, "unrecorded_reads": len(report.unrecorded_reads),
            "rolled_back_reads": len(report.rolled_back_reads), "ignored_events": len(report.ignored),
            "ok": report.ok}


def _print_reports(reports: list[VaultReport], json_out: bool) -> None:
    if json_out:
        totals = {k: sum(_summary(r)[k] for r in reports) for k in
                  ("records", "tampered", "missing", "uncommitted", "unshredded", "keys_missing", "unrecorded_reads",
                   "rolled_back_reads")}
        print_json({**totals, "ok": all(r.ok for r in reports),
                    "vaults": [{**_summary(r), "details": r.as_dict()} for r in reports]})
        return
    table = Table(title="Vaults against the chain")
    for column in ("vault", "records", "tampered", "missing", "reads logged", "on-chain", "unrecorded", "verdict"):
        table.add_column(column, justify="left" if column in ("vault", "verdict") else "right")
    for r in reports:
        s = _summary(r)
        table.add_row(r.vault, str(s["records"]), str(s["tampered"]), str(s["missing"]), str(s["reads_logged"]),
                      str(s["reads_on_chain"]), str(s["unrecorded_reads"]),
                      "[green]ok[/]" if r.ok else "[red]does not match[/]")
    console.print(table)
    for r in reports:
        for line in r.lines():
            console.print(f"  {r.vault}: {line}", markup=False)


@app.command()
def bench(
    records: Annotated[int, typer.Option(min=1, max=100_000, help="records to write")] = 1000,
    reads: Annotated[int, typer.Option(min=1, max=100_000, help="reads, one at a time, each recorded first")] = 300,
    record_bytes: Annotated[int, typer.Option(min=1, max=1 << 20, help="bytes per record")] = 512,
    batch: Annotated[int, typer.Option(min=1, max=500, help="records written per commit flush")] = 100,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Records written and read per second through the service, on a private embedded Anvil."""
    from qeaims.bench_vault import run_vault_bench

    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("starting", total=None)
        result = run_vault_bench(records=records, reads=reads, record_bytes=record_bytes, write_batch=batch,
                                 progress=lambda what, done, total: bar.update(task, description=what,
                                                                               completed=done, total=total))
    if json_out:
        print_json(result.as_dict())
        return
    table = Table(title="Vault benchmark (embedded Anvil)", show_header=False)
    table.add_row("records written/s", f"{result.writes_per_second:,.0f} (batches of {batch})")
    table.add_row("records read/s", f"{result.reads_per_second:,.1f} (one at a time, each recorded on-chain first)")
    table.add_row("read latency p50 / p95", f"{result.read_p50_ms:.1f} ms / {result.read_p95_ms:.1f} ms")
    table.add_row("verify", f"{result.verify_seconds:.1f} s, {'ok' if result.verified_ok else 'FAILED'}")
    console.print(table)
