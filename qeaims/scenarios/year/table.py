"""The year's report as a rich table: one row per sector and KPI, the controller beside the baseline.

Why a separate module: the report (`run`) is data for `--json` and tests; how a terminal shows it is
a presentation choice that should not sit in the simulation.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

__all__ = ["year_table"]


def _h(spread: dict[str, Any]) -> str:
    if spread["mean"] is None:
        return "-"
    return f"{spread['mean']:.2f} / {spread['p95']:.2f} h"


def _rows(row: dict[str, Any]) -> list[tuple[str, str, str]]:
    c, b = row["controller"], row["baseline"]
    out = [
        ("availability", f"{c['availability']:.6f}", f"{b['availability']:.6f}"),
        ("recovery, service-weighted (mean / p95)", _h(c["recovery_h"]), _h(b["recovery_h"])),
        ("full restoration (mean / p95)", _h(c["full_restoration_h"]), _h(b["full_restoration_h"])),
        (f"unserved ({c['unserved']['unit']})", f"{c['unserved']['value']:,.1f}", f"{b['unserved']['value']:,.1f}"),
        ("crew hours / truck rolls", f"{c['crew_hours']:.1f} / {c['truck_rolls']}", f"{b['crew_hours']:.1f} / {b['truck_rolls']}"),
        ("cost: crews + unserved (USD)", f"{c['cost_usd']['crews']:,} + {c['cost_usd']['unserved']:,}",
         f"{b['cost_usd']['crews']:,} + {b['cost_usd']['unserved']:,}"),
    ]
    if "water_lost_m3" in c:
        out.append(("water lost (m³)", f"{c['water_lost_m3']:,.0f}", f"{b['water_lost_m3']:,.0f}"))
    w = row["work_orders"]
    share = "-" if w["preventive_share"] is None else f"{w['preventive_share']:.0%}"
    out.append(("work orders: corrective / preventive / false alarm (share)",
                f"{w['corrective']} / {w['preventive_before_failure']} / {w['preventive_false_alarm']} ({share})",
                f"{b['truck_rolls']} / 0 / 0 (0%)"))
    protect = row.get("protective_commands") or {}
    if protect:
        out.append(("protective commands to other sectors (not measured)",
                    ", ".join(f"{k} ×{v}" for k, v in protect.items()), "none"))
    return out


def year_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"A year of random faults (seed {report['seed']}, faults ×{report['faults_scale']:g}, "
                        f"{report['days']:g} days): controller vs automation off",
                  caption="offline: the controller's planner and crews on the twins, without chain or oracles; "
                          "every rate and price is an assumption (docs/year.md)")
    for column in ("sector", "KPI", "controller", "automation off"):
        table.add_column(column)
    for sector, row in report["sectors"].items():
        table.add_row(sector, f"{row['faults']} faults, {row['faults_with_service_impact']} cut service", "", "")
        for kpi, ctl, base in _rows(row):
            table.add_row("", kpi, ctl, base)
        table.add_section()
    total = report["total"]
    c, b = total["controller"], total["baseline"]
    table.add_row("total", "availability (mean over sectors)", f"{c['availability']:.6f}", f"{b['availability']:.6f}")
    table.add_row("", "crew hours / truck rolls", f"{c['crew_hours']:.1f} / {c['truck_rolls']}",
                  f"{b['crew_hours']:.1f} / {b['truck_rolls']}")
    share = total["preventive_share"]
    table.add_row("", "preventive maintenance share", "-" if share is None else f"{share:.0%}", "0%")
    energy = report["energy"]
    if energy is not None:
        day = energy["day_losses_kwh"]
        table.add_row("", "feeder losses, one day (kWh)", f"{day['controller']:,.0f} (−{energy['saved_share']:.0%})",
                      f"{day['baseline']:,.0f}")
        table.add_row("", "feeder losses, year (MWh)", f"{energy['year_losses_mwh']['controller']:,.0f}",
                      f"{energy['year_losses_mwh']['baseline']:,.0f}")
    table.add_row("", "cost: crews + unserved + losses = total (USD)",
                  f"{c['cost_usd']['crews']:,} + {c['cost_usd']['unserved']:,} + {c['cost_usd']['feeder_losses']:,} "
                  f"= {c['cost_usd']['total']:,}",
                  f"{b['cost_usd']['crews']:,} + {b['cost_usd']['unserved']:,} + {b['cost_usd']['feeder_losses']:,} "
                  f"= {b['cost_usd']['total']:,}")
    return table
