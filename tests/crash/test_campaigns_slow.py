"""The campaigns end to end on a throwaway city (minutes each: `slow`, run with QEAIMS_SLOW=1).

The full-size figures (`qeaims campaign crash --runs 20`, `qeaims campaign chain-down --seconds 60`) are
run by hand and reported in docs/crash-campaign.md.
"""

from __future__ import annotations

import pytest

from core.messages import Sector
from qeaims.chain_down_campaign import ChainDownOptions, run_chain_down
from qeaims.crash_campaign import CrashOptions, run_crash_campaign

pytestmark = [pytest.mark.slow, pytest.mark.city]


def test_the_chain_and_an_oracle_killed_mid_scenario_lose_nothing() -> None:
    report = run_crash_campaign(CrashOptions(runs=2, seed=3, sectors=(Sector("banking"),),
                                             kinds=("chain", "oracle")))
    body = report.as_json()
    assert sorted(k.kind for k in report.kills) == ["chain", "oracle"]
    assert all(k.recovered for k in report.kills), body["kills"]
    assert body["events_lost"] == 0 and body["duplicates"] == 0, body
    assert report.ok, body
    oracle = next(k for k in report.kills if k.kind == "oracle")
    chain = next(k for k in report.kills if k.kind == "chain")
    assert oracle.recovery_s is not None and oracle.recovery_s <= 10.0, body["kills"]
    # the 60 s receipt-timeout wait after a restart is fixed (a nonce behind lost blocks fails in ~2 s,
    # tests/crash/test_nonce_after_lost_blocks.py); still open (docs/crash-campaign.md, "Open"): clients
    # see the half-replayed chain; the bound stays generous until that is fixed, the goal is 10 s
    assert chain.recovery_s is not None and chain.recovery_s <= 70.0, body["kills"]


def test_a_chain_frozen_for_seconds_queues_and_drains_in_order() -> None:
    report = run_chain_down(ChainDownOptions(seconds=8, sectors=(Sector("banking"),)))
    body = report.as_json()
    assert report.queued > 0 and report.landed_during_outage == 0, body
    assert report.commands_during_outage == [] and report.commands_without_quorum == [], body
    assert report.drained and report.ok, report.problems()
