"""`qeaims link ...`: the state of the city's secure links."""

from __future__ import annotations

import typer

app = typer.Typer(help="The city's secure links (hybrid QKD ⊕ ML-KEM-768 ⊕ X25519).", no_args_is_help=True)
