"""Helpers shared by the sub-commands: settings from the context, identities by name, output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from core.config import Settings
from core.errors import ConfigError, IdentityError, QeaimsError
from core.messages import Sector
from sectors.runner import parse_sector

if TYPE_CHECKING:  # eth_account and the signers load when an identity does, not with every command
    from keys.identity import HybridIdentity

console = Console()
err_console = Console(stderr=True)


def settings_of(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def keystore_path(settings: Settings, *, oracle: str | None = None, governor: str | None = None,
                  keystore: Path | None = None) -> Path:
    """`--oracle water-2` → keystores/oracles/water-2.json; `--governor water` → keystores/governors/water.json."""
    if keystore is not None:
        path = keystore
    elif oracle is not None:
        path = settings.keystore_dir / "oracles" / f"{oracle}.json"
    elif governor is not None:
        path = settings.keystore_dir / "governors" / f"{governor}.json"
    else:
        raise ConfigError("name an identity with --oracle, --governor or --keystore")
    if not path.is_file():
        raise IdentityError(f"no keystore at {path}: create it with `qeaims keys new` or run `qeaims deploy`")
    return path


def load_identity(settings: Settings, **kwargs: Any) -> HybridIdentity:
    from keys.keystore import load_keystore

    return load_keystore(keystore_path(settings, **kwargs), settings.passphrase)


def record_as_controller(settings: Settings, kind: str, node: str, body: dict[str, Any]) -> int:
    """One event signed with the controller's identity: the control room's order (a vault's seal, an
    indicator's withdrawal, a countermeasure's lift), through the controller's own outbox; its seq
    (`chain.control_room`, which the API records notices with too)."""
    from chain.control_room import record_as_control_room

    return record_as_control_room(settings, kind, node, body).seq


def check_sector(name: str) -> str:
    return parse_sector(name).value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def sector_help(suffix: str = "") -> str:
    """The registered sectors for an option's help text, read when the command is defined.

    A broken ``QEAIMS_SECTOR_PLUGINS`` must not turn importing the command into a traceback: the
    help then says so, and `qeaims.cli.main` reports the broken reference as one ``error:`` line."""
    try:
        names = ", ".join(s.value for s in Sector)
    except QeaimsError:
        names = "a registered sector (the sector plug-ins did not load)"
    return names + suffix
