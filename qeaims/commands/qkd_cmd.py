"""`qeaims qkd ...`: the simulated decoy-state BB84 link, analytically and pulse by pulse."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import ConfigError
from qeaims.commands._common import console, err_console, print_json

app = typer.Typer(help="Simulated decoy-state BB84 QKD over fibre.", no_args_is_help=True)

DEFAULT_DISTANCES = "0,25,50,75,100,125,140"


def _distances(text: str) -> list[float]:
    values: list[float] = []
    for part in text.split(","):
        try:
            value = float(part.strip())
        except ValueError:
            raise ConfigError(f"--distances: {part.strip()!r} is not a number of km "
                              f"(give a comma-separated list such as {DEFAULT_DISTANCES})") from None
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"--distances: a distance must be a finite number of km >= 0, not {part.strip()}")
        values.append(value)
    return values


def _key(distance: float) -> str:
    return f"{distance:g}"


@app.command()
def keyrate(
    distances: Annotated[str, typer.Option(help="comma-separated fibre lengths in km")] = DEFAULT_DISTANCES,
    alpha: Annotated[float, typer.Option(help="fibre loss, dB/km")] = 0.21,
    eta_bob: Annotated[float, typer.Option(help="Bob's detection efficiency")] = 0.045,
    y0: Annotated[float, typer.Option(help="dark-count yield per pulse")] = 1.7e-6,
    e_det: Annotated[float, typer.Option(help="misalignment error")] = 0.033,
    f_ec: Annotated[float, typer.Option(help="error-correction inefficiency")] = 1.22,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The asymptotic infinite-decoy key rate (Lo, Ma and Chen 2005), mu optimised per distance."""
    from links.qkd import FibreParams, asymptotic_rate, max_distance_km
    from links.qkd.keyrate import optimal_mu

    chosen = _distances(distances)
    params = FibreParams(alpha_db_per_km=alpha, eta_bob=eta_bob, y0=y0, e_det=e_det, f_ec=f_ec)
    mus = {_key(d): optimal_mu(d, params) for d in chosen}
    rates = {_key(d): max(asymptotic_rate(d, params, mus[_key(d)]), 0.0) for d in chosen}
    data = {"rates": rates, "mu": mus, "max_distance_km": max_distance_km(params),
            "params": {"alpha_db_per_km": alpha, "eta_bob": eta_bob, "y0": y0, "e_det": e_det, "f_ec": f_ec,
                       "e0": params.e0}}
    if json_out:
        print_json(data)
        return
    table = Table(title="Decoy-state BB84, infinite decoys (LMC 2005)")
    table.add_column("distance (km)", justify="right")
    table.add_column("key rate (bits/pulse)", justify="right")
    table.add_column("optimal mu", justify="right")
    for d in chosen:
        table.add_row(_key(d), f"{rates[_key(d)]:.3e}", f"{mus[_key(d)]:.3f}")
    console.print(table)
    console.print(f"maximum distance: {data['max_distance_km']:.1f} km")


@app.command()
def simulate(
    distance: Annotated[float, typer.Option(help="fibre length, km")] = 25.0,
    pulses: Annotated[int, typer.Option(help="pulses in a block")] = 20_000_000,
    seed: Annotated[int | None, typer.Option(help="random seed (default: fresh entropy)")] = None,
    eve: Annotated[str | None, typer.Option(help="an eavesdropper: intercept-resend or pns")] = None,
    fraction: Annotated[float, typer.Option(help="share of pulses Eve attacks, in (0, 1]")] = 1.0,
    blocks: Annotated[int, typer.Option(help="blocks to run (more than 1: alarm counts and mean rates)")] = 1,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Pulse-level simulation of key blocks, beside the analytic expectation at the same intensities."""
    import numpy as np

    from links.qkd import (
        Eavesdropper,
        FibreParams,
        SourceSettings,
        expected_stats,
        run_block,
        vacuum_weak_rate,
    )

    if not math.isfinite(distance) or distance < 0:
        raise ConfigError(f"--distance must be a finite number of km >= 0, not {distance}")
    if pulses <= 0:
        raise ConfigError(f"--pulses must be a positive number of pulses, not {pulses}")
    if blocks <= 0:
        raise ConfigError(f"--blocks must be at least 1, not {blocks}")
    if not math.isfinite(fraction) or not 0.0 < fraction <= 1.0:
        raise ConfigError(f"--fraction must be in (0, 1], not {fraction}")
    attacker = Eavesdropper(eve, fraction) if eve is not None else None  # type: ignore[arg-type]
    params, source = FibreParams(), SourceSettings()
    rng = np.random.default_rng(seed)
    expected = expected_stats(distance, params, source)
    analytic = {"gain_signal": expected.signal.gain, "qber": expected.signal.qber, "gain_decoy": expected.decoy.gain,
                "y1_lower": expected.bounds.y1_lower, "e1_upper": expected.bounds.e1_upper,
                "secure_rate": max(source.p_mu * vacuum_weak_rate(distance, params, source), 0.0)}
    setting = {"distance_km": distance, "pulses": pulses, "seed": seed, "blocks": blocks,
               "eve": None if attacker is None else {"kind": attacker.kind, "fraction": attacker.fraction},
               "source": {"mu": source.mu, "nu": source.nu, "p_mu": source.p_mu, "p_nu": source.p_nu,
                          "p_vacuum": source.p_vacuum}}
    if blocks == 1:
        result = run_block(distance, pulses, params=params, source=source, rng=rng, eve=attacker)
        summary = result.summary()
        summary["final_key_bits"] = summary.pop("final_bits")
        data: dict[str, object] = {**setting, "block": summary, "analytic": analytic}
        if json_out:
            print_json(data)
            return
        table = Table(title=f"One block at {distance:g} km ({pulses:,} pulses)")
        table.add_column("quantity")
        table.add_column("measured", justify="right")
        table.add_column("analytic", justify="right")
        for name, value, want in (("signal gain", result.gain_signal, analytic["gain_signal"]),
                                  ("signal QBER", result.qber, analytic["qber"]),
                                  ("decoy gain", result.gain_decoy, analytic["gain_decoy"]),
                                  ("Y1^L", result.y1_lower, analytic["y1_lower"]),
                                  ("e1^U", result.e1_upper, analytic["e1_upper"]),
                                  ("secure rate (bits/pulse)", result.secure_rate, analytic["secure_rate"])):
            table.add_row(name, f"{value:.4g}", f"{want:.4g}")
        table.add_row("sifted bits", str(result.sifted_bits), "")
        table.add_row("Cascade leaked bits / f", f"{result.ec_leaked_bits} / {result.ec_efficiency:.3f}", "")
        table.add_row("final key bits", str(result.final_bits), "")
        table.add_row("attack detected", str(result.attack_detected), "")
        console.print(table)
        for alarm in result.alarms:
            console.print(f"alarm: {alarm}")
        if result.aborted:
            console.print(f"aborted: {result.aborted}")
        return
    alarmed = 0
    tags: dict[str, int] = {}
    rates: list[float] = []
    qbers: list[float] = []
    finals: list[int] = []
    with Progress(TextColumn("blocks"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[alarms]} alarmed"), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("simulate", total=blocks, alarms=0)
        for _ in range(blocks):
            result = run_block(distance, pulses, params=params, source=source, rng=rng, eve=attacker)
            alarmed += result.attack_detected
            for alarm in result.alarms:
                tag = alarm.split(":")[0]
                tags[tag] = tags.get(tag, 0) + 1
            rates.append(result.secure_rate)
            qbers.append(result.qber)
            finals.append(result.final_bits)
            bar.update(task, advance=1, alarms=alarmed)
    data = {**setting, "analytic": analytic, "blocks_alarmed": alarmed, "alarm_rate": alarmed / blocks,
            "alarm_tags": tags, "mean_qber": float(np.mean(qbers)), "mean_secure_rate": float(np.mean(rates)),
            "mean_final_key_bits": float(np.mean(finals)), "blocks_with_key": sum(1 for f in finals if f > 0)}
    if json_out:
        print_json(data)
        return
    table = Table(title=f"{blocks} blocks at {distance:g} km ({pulses:,} pulses each)", show_header=False)
    label = "detection rate" if attacker is not None else "false alarm rate"
    table.add_row(label, f"{alarmed} / {blocks} ({alarmed / blocks:.1%})")
    table.add_row("alarms by check", ", ".join(f"{k}: {v}" for k, v in sorted(tags.items())) or "none")
    table.add_row("mean QBER", f"{data['mean_qber']:.4f} (analytic {analytic['qber']:.4f})")
    table.add_row("mean secure rate", f"{data['mean_secure_rate']:.4g} bits/pulse "
                                      f"(analytic {analytic['secure_rate']:.4g})")
    table.add_row("mean final key bits", f"{data['mean_final_key_bits']:.0f}")
    console.print(table)
