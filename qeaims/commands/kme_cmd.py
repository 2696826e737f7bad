"""`qeaims kme`: the key management entity (ETSI GS QKD 014 v1.1.1 over HTTPS), until stopped.

It serves the links of ``<home>/links/plan.json`` (written by `qeaims up`), makes the development
PKI there if it is missing, keeps the keys delivered to one end only in ``<home>/links/kme-state.json``
and runs the simulated QKD pair of every link in the background (`links.kme`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from core.logs import setup_logging
from qeaims.commands._common import settings_of


def kme(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTPS port")] = 8443,
    host: Annotated[str, typer.Option(help="address to bind (127.0.0.1: this machine only)")] = "127.0.0.1",
) -> None:
    """Serve the KME: keys from the simulated QKD pairs to the SAEs of each link (ETSI GS QKD 014)."""
    from links.files import LinkFiles
    from links.kme.server import serve_forever
    from links.pki import DevPki
    from links.plan import LinkPlan
    from qeaims.supervisor import install_stop_signals

    settings = settings_of(ctx)
    files = LinkFiles.of(settings.home)
    plan = LinkPlan.load(files.plan)
    setup_logging()
    stop = install_stop_signals()
    pki = DevPki(files.pki)
    pki.ensure_all(plan)
    serve_forever(plan, pki, host=host, port=port, state_path=files.kme_state, stop=stop)
