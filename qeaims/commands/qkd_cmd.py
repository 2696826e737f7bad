"""`qeaims qkd ...`: the simulated decoy-state BB84 link, analytically and pulse by pulse."""

from __future__ import annotations

import typer

app = typer.Typer(help="Simulated decoy-state BB84 QKD over fibre.", no_args_is_help=True)
