"""What every fault campaign shares: seed handling, the run record, the tallies and the JSON report.

A campaign is `runs` independent runs drawn from one campaign seed. Run `i` draws everything from its
own *derived* seed (`derive_seed(S, i)`), so any run can be played again alone (`--replay SEED`, or
`--seed S --only I`) and must give the same record: a record holds only what the seed decides and
what the chain answered, never times or transaction hashes.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from core.errors import ConfigError

__all__ = ["MAX_SEED", "CampaignReport", "RunRecord", "Tally", "derive_seed", "parse_seed", "run_rng"]

MAX_SEED = 2**63 - 1


def parse_seed(text: str, what: str = "seed") -> int:
    """A seed given on the command line: a decimal or 0x-hex integer in 0..2^63-1."""
    raw = text.strip().lower()
    try:
        value = int(raw, 16) if raw.startswith("0x") else int(raw, 10)
    except ValueError:
        raise ConfigError(f"bad {what} {text!r}: give an integer from 0 to {MAX_SEED}") from None
    if not 0 <= value <= MAX_SEED:
        raise ConfigError(f"bad {what} {text!r}: give an integer from 0 to {MAX_SEED}")
    return value


def derive_seed(campaign_seed: int, run_index: int) -> int:
    """Run `run_index`'s seed: the first 63 bits of SHA-256("qeaims-campaign:S:i").

    A hash rather than `S + i` so that neighbouring campaigns do not share runs."""
    digest = hashlib.sha256(f"qeaims-campaign:{campaign_seed}:{run_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & MAX_SEED


def run_rng(derived_seed: int) -> random.Random:
    """The only source of randomness of a run (Python's Mersenne Twister: same seed, same draws)."""
    return random.Random(derived_seed)


@dataclass
class RunRecord:
    """One run: its identity, what it drew, what the chain decided, and whether that was right."""

    index: int
    seed: int
    drawn: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)
    wrongful: list[str] = field(default_factory=list)  # healthy nodes isolated, honest oracles quarantined
    missed: list[str] = field(default_factory=list)  # faulty nodes not isolated within the bound
    behaviours: Counter[str] = field(default_factory=Counter)  # behaviour → times tried
    effects: Counter[str] = field(default_factory=Counter)  # "behaviour: what came of it" → times
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.wrongful or self.missed)

    def comparable(self) -> dict[str, Any]:
        """The record without run-order fields: equal for a run and its replay."""
        return {"seed": self.seed, "drawn": self.drawn, "outcome": self.outcome, "wrongful": sorted(self.wrongful),
                "missed": sorted(self.missed), "behaviours": dict(sorted(self.behaviours.items())),
                "effects": dict(sorted(self.effects.items())), "notes": list(self.notes)}

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, **self.comparable()}


@dataclass
class Tally:
    """Counts over a campaign's runs."""

    runs: int = 0
    wrongful: int = 0
    missed: int = 0
    behaviours: Counter[str] = field(default_factory=Counter)
    effects: Counter[str] = field(default_factory=Counter)
    failing: list[tuple[int, int]] = field(default_factory=list)  # (run index, derived seed)

    def add(self, record: RunRecord) -> None:
        self.runs += 1
        self.wrongful += len(record.wrongful)
        self.missed += len(record.missed)
        self.behaviours.update(record.behaviours)
        self.effects.update(record.effects)
        if record.failed:
            self.failing.append((record.index, record.seed))


class FailingRun(BaseModel):
    index: int
    seed: int
    wrongful: list[str]
    missed: list[str]
    replay: str = Field(description="the command line that plays this run again")


class CampaignReport(BaseModel):
    """The `--json` output of a campaign (a process boundary: validated, stable keys)."""

    campaign: str
    seed: int | None
    runs: int
    wrongful: int
    missed: int
    behaviours: dict[str, int]
    effects: dict[str, int]
    failing: list[FailingRun]
    duration_s: float
    setup_s: float
    per_run_s: float
    details: dict[str, Any] = Field(default_factory=dict)
    records: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No wrongful or missed isolation, and (Byzantine campaign) the auditor's recount agrees with the
        peers' check run by run and finds nothing else: the peers' check is the campaign's copy of
        `oracles.peer_check`, the recount is the production rule (`recount_quorum`)."""
        return (self.wrongful == 0 and self.missed == 0 and not self.details.get("peer_check_disagrees_in_runs")
                and not self.details.get("other_recount_problems"))


def timed(step: Callable[[], Any]) -> tuple[Any, float]:
    """`step()` and the wall-clock seconds it took."""
    start = time.perf_counter()
    value = step()
    return value, time.perf_counter() - start
