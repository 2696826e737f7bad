"""The `qeaims` command: one entry point, sub-commands per concern, one-line errors.

User mistakes (bad flag, unknown sector, missing keystore, chain down, wrong passphrase) end with
a single `error: ...` line on stderr and exit code 2; a failed audit exits 1. Tracebacks are kept
for real bugs.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer._click import exceptions as click_errors

from core.config import load_settings
from core.errors import AuditFailed, QeaimsError
from core.sectors import discover
from keys.errors import KeysError
from qeaims.commands import (
    audit_cmd,
    bench_cmd,
    campaign_cmd,
    chain_cmd,
    detect_cmd,
    event_cmd,
    gov_cmd,
    intel_cmd,
    keys_cmd,
    kme_cmd,
    link_cmd,
    network_cmd,
    qkd_cmd,
    quorum_cmd,
    run_cmd,
    scenario_cmd,
    serve_cmd,
    up_cmd,
    vault_cmd,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="qeaims",
    help="QEAIMS: ledger-centric, quorum-checked self-healing for a city's critical infrastructure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(chain_cmd.app, name="chain")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(gov_cmd.app, name="gov")
app.add_typer(event_cmd.app, name="event")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(quorum_cmd.app, name="isolation")
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(detect_cmd.app, name="detect")
app.add_typer(scenario_cmd.app, name="scenario")
app.add_typer(campaign_cmd.app, name="campaign")
app.add_typer(qkd_cmd.app, name="qkd")
app.add_typer(link_cmd.app, name="link")
app.add_typer(vault_cmd.app, name="vault")
app.add_typer(intel_cmd.app, name="intel")
app.add_typer(serve_cmd.app, name="serve")
app.add_typer(network_cmd.app, name="network")
app.command("deploy")(chain_cmd.deploy)
app.command("demo")(chain_cmd.demo)
app.command("kme")(kme_cmd.kme)
app.command("oracle")(run_cmd.oracle)
app.command("oracles")(run_cmd.oracles)
app.command("twin")(run_cmd.twin)
app.command("broker")(run_cmd.broker)
app.command("controller")(run_cmd.controller)
app.command("up")(up_cmd.up)
app.command("ps")(up_cmd.ps)
app.command("down")(up_cmd.down)
app.command("supervise", hidden=True)(up_cmd.supervise)


@app.callback()
def _settings(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(help="data directory (default ./.qeaims or $QEAIMS_HOME)")] = None,
    port: Annotated[int | None, typer.Option(help="RPC port of the embedded chain (default 8545)")] = None,
    rpc_url: Annotated[str | None, typer.Option(help="use the node at this URL instead of the embedded one")] = None,
) -> None:
    ctx.obj = load_settings(home=home, rpc_port=port, rpc_url_override=rpc_url)


_SQLITE_ENVIRONMENT = ("disk is full", "database is locked", "unable to open database", "disk I/O error",
                       "readonly database")


def main(argv: list[str] | None = None) -> None:
    try:
        discover()  # a broken sector plug-in reference is one error line, before any command runs
        code = app(args=argv, prog_name="qeaims", standalone_mode=False)
        if isinstance(code, int) and code != 0:  # typer.Exit(n) is returned, not raised, here
            sys.exit(code)
    except click_errors.NoArgsIsHelpError as exc:
        # click already printed the help text
        del exc
        sys.exit(0)
    except click_errors.UsageError as exc:
        where = f" ({exc.ctx.command_path})" if exc.ctx is not None else ""
        print(f"error{where}: {exc.format_message()}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except AuditFailed as exc:
        print(f"audit failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except (QeaimsError, KeysError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except sqlite3.OperationalError as exc:
        # a full disk or a locked, unreadable store is the machine's state, said in one line; anything
        # else from SQLite is a bug and keeps its traceback
        if not any(m in str(exc) for m in _SQLITE_ENVIRONMENT):
            raise
        print(f"error: a local database failed: {exc} (free disk space, or stop the process that holds it)",
              file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # the data directory or a file the user named is not usable
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
