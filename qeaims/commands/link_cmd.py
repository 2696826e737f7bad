"""`qeaims link ...`: the state of the city's secure links, and their setup for components run by hand.

`status` prints `links.status.link_rows` (shared with the API): the plan (each link's ends and fibre),
the KME (its QKD state, the last block's QBER, keys in store) and the ends' own reports (the current
session's epoch and mode, envelopes sealed, opened and refused by reason). No key material is read or shown.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from qeaims.commands._common import console, print_json, settings_of

app = typer.Typer(help="The city's secure links (hybrid QKD + ML-KEM-768 + X25519).", no_args_is_help=True)


@app.command()
def status(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each link: its QKD state and last QBER, its session's epoch and mode, envelopes sealed/opened/refused."""
    from links.status import link_rows

    data = link_rows(settings_of(ctx).home)
    if json_out:
        print_json(data)
        return
    table = Table(title=f"Secure links (KME {data['kme']})")
    table.add_column("link (master → slave)", overflow="fold")
    for column in ("km", "QKD", "QBER", "keys", "epoch", "mode", "sealed", "opened", "refused"):
        table.add_column(column, no_wrap=True)
    for row in data["links"]:
        refused = sum(row["refused"].values())
        table.add_row(f"{row['master']} → {row['slave']}", f"{row['distance_km']:g}", row["qkd_state"],
                      "-" if row["qber"] is None else f"{row['qber']:.2%}",
                      "-" if row["keys_available"] is None else str(row["keys_available"]),
                      "-" if row["epoch"] is None else str(row["epoch"]), row["mode"] or "-",
                      str(row["sealed"]), str(row["opened"]),
                      str(refused) if not refused else f"{refused} ({', '.join(f'{k} {v}' for k, v in row['refused'].items())})")
    console.print(table)
    console.print("sealed: envelopes sent by both ends; opened: envelopes taken by the ends' reading clients "
                  "(the controller reads each twin's link twice: SCADA view and commander); refused: by reason")
    if data["kme_error"]:
        console.print(f"KME not reached: {data['kme_error']}")


@app.command()
def setup(
    ctx: typer.Context,
    sectors: Annotated[str, typer.Option(help="comma-separated sectors, or 'all'")] = "all",
    oracles: Annotated[int, typer.Option(min=1, max=16, help="oracles per sector")] = 4,
    kme_port: Annotated[int, typer.Option(min=1, max=65535, help="port the KME will serve on")] = 8443,
) -> None:
    """Write the link plan and make every SAE's keys and certificates (what `qeaims up` does first),
    for components run by hand: `qeaims kme`, `qeaims twin`, `qeaims oracle`, `qeaims controller`."""
    from links.files import LinkFiles
    from links.plan import city_plan
    from links.site import prepare
    from qeaims.commands.up_cmd import parse_sectors

    settings = settings_of(ctx)
    chosen = parse_sectors(sectors)
    files = LinkFiles.of(settings.home)
    plan = city_plan([s.value for s in chosen], oracles_per_sector=oracles, kme_url=f"https://127.0.0.1:{kme_port}")
    prepare(files, plan)
    console.print(f"{len(plan.links)} links for {len(plan.saes())} SAEs in {files.root} (KME {plan.kme_url})")
