"""A Byzantine campaign end to end: the dev chain, the runs, the recount, the report (`CampaignReport`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chain.consortium import ORACLES_PER_SECTOR, sectors
from core.config import Settings
from core.errors import ConfigError, UnknownSector
from qeaims.campaigns.byzantine import BEHAVIOURS, ByzantineCampaign, behaviour_counts, byzantine_f
from qeaims.campaigns.common import CampaignReport, FailingRun, RunRecord, Tally, derive_seed
from qeaims.campaigns.devchain import dev_chain

__all__ = ["SEGMENT_RUNS", "ByzantineOptions", "check_sectors", "run_byzantine"]

SEGMENT_RUNS = 20
"""Runs played on one chain before the next segment starts a fresh one (deploy and setup, ~3 s).

Anvil 1.7 rebuilds the complete state tries for every mined block (foundry-rs/foundry#15715, fixed
in later releases), so its time per transaction grows with the chain: on one chain the 100th run
took 3.2 s against 1.0 s for the first ones. Every run starts from the same logical state anyway
(all nodes and oracles active, nothing open), so a fresh chain per segment changes no record."""


@dataclass(frozen=True)
class ByzantineOptions:
    runs: int
    seed: int | None  # None with `replay`
    sectors: tuple[str, ...]
    liars: int | None = None  # None: up to f per sector; a number forces that many (tests: f+1 must fail)
    only: int | None = None  # play only this run of the campaign
    replay: int | None = None  # play only the run with this derived seed
    keep_records: bool = False  # every run's record in the report, not only the failing ones
    port: int | None = None  # the campaign Anvil's port (default: a free one)
    segment: int = SEGMENT_RUNS  # runs on one chain before a fresh one is started


def check_sectors(names: Sequence[str]) -> tuple[str, ...]:
    """The sectors asked for (comma-separated items allowed), each known to the dev consortium."""
    known = sectors()
    chosen: list[str] = []
    for item in names:
        for name in (x.strip() for x in item.split(",")):
            if not name:
                continue
            if name not in known:
                raise UnknownSector(f"unknown sector {name!r}: choose from {', '.join(known)}")
            if name not in chosen:
                chosen.append(name)
    return tuple(chosen) or known


def _plan(options: ByzantineOptions) -> list[tuple[int, int]]:
    if options.runs < 1:
        raise ConfigError(f"--runs must be at least 1, not {options.runs}")
    if options.liars is not None and not 0 <= options.liars < ORACLES_PER_SECTOR:
        raise ConfigError(f"--liars must be from 0 to {ORACLES_PER_SECTOR - 1}, not {options.liars}")
    if options.replay is not None:
        return [(0, options.replay)]
    assert options.seed is not None
    if options.only is not None:
        if options.only < 0:
            raise ConfigError(f"--only must name a run (0 or more), not {options.only}")
        return [(options.only, derive_seed(options.seed, options.only))]
    return [(i, derive_seed(options.seed, i)) for i in range(options.runs)]


def _merge(into: dict[str, Any], found: dict[str, Any]) -> None:
    """Add one segment's recount figures to the campaign's (counts add up, lists concatenate)."""
    for key, value in found.items():
        if isinstance(value, list):
            into[key] = [*into.get(key, []), *value]
        else:
            into[key] = into.get(key, 0) + value


def replay_command(options: ByzantineOptions, record: RunRecord) -> str:
    forced = f" --liars {options.liars}" if options.liars is not None else ""
    chosen = f" --sectors {','.join(options.sectors)}" if options.sectors != sectors() else ""
    return f"qeaims campaign byzantine --replay {record.seed}{chosen}{forced}"


def run_byzantine(settings: Settings, options: ByzantineOptions, *, status: Callable[[str], None] = lambda _: None,
                  advance: Callable[[int, int, Tally], None] = lambda *_: None) -> CampaignReport:
    """Play the campaign; `status` hears the setup's steps, `advance(done, total, tally)` each run."""
    plan = _plan(options)
    started = time.perf_counter()
    records: list[RunRecord] = []
    tally = Tally()
    details: dict[str, Any] = {}
    setup_s = 0.0
    advance(0, len(plan), tally)
    for first in range(0, len(plan), options.segment):
        segment = plan[first:first + options.segment]
        setup_started = time.perf_counter()
        with dev_chain(settings, "byzantine", status, port=options.port) as chain:
            campaign = ByzantineCampaign(chain, options.sectors, options.liars)
            try:
                status("setting up the earlier epoch the liars replay")
                campaign.setup()
                setup_s += time.perf_counter() - setup_started
                done: list[RunRecord] = []
                for index, seed in segment:
                    record = campaign.run(index, seed)
                    done.append(record)
                    tally.add(record)
                    advance(len(records) + len(done), len(plan), tally)
                status("recounting every decision from chain data")
                _merge(details, campaign.finish(done, tally))
            finally:
                campaign.close()
        records += done
    duration = time.perf_counter() - started
    details.update({"sectors": list(options.sectors), "f_per_sector": byzantine_f(ORACLES_PER_SECTOR),
                    "oracles_per_sector": ORACLES_PER_SECTOR, "liars_forced": options.liars,
                    "behaviours_known": list(BEHAVIOURS)})
    failing = [FailingRun(index=r.index, seed=r.seed, wrongful=sorted(r.wrongful), missed=sorted(r.missed),
                          replay=replay_command(options, r)) for r in records if r.failed]
    runs_s = duration - setup_s
    return CampaignReport(
        campaign="byzantine", seed=options.seed, runs=tally.runs, wrongful=tally.wrongful, missed=tally.missed,
        behaviours=behaviour_counts(tally.behaviours), effects=dict(sorted(tally.effects.items())),
        failing=failing, duration_s=round(duration, 3), setup_s=round(setup_s, 3),
        per_run_s=round(runs_s / max(tally.runs, 1), 4), details=details,
        records=[r.as_dict() for r in records if options.keep_records or r.failed],
    )
