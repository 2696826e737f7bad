"""controller._intrusion_response._judged_release: which quorums of intrusion verdicts are a hold's release.

The storm day (run 8): hospital-2's diversion was lifted after its mass-casualty surge; 18 field minutes
later its two-hour arrivals count still held the surge's walk-ins (15.5 an hour, above any normal
day's 13.5), the model's first-pass range check called the count a lone sensor out of line, and four
oracles' intrusion verdicts had a healthy sensor quarantined.
"""

from __future__ import annotations

import pytest

from chain.commanded import Release
from controller._intrusion_response import RELEASE_ROWS, _judged_release
from controller.cyber import Quarantine
from sectors.healthcare.plugin import PLUGIN

pytestmark = pytest.mark.unit

RELEASED_MS = 1_735_698_000_000  # the diversion's undo, as hospital-2's board answered it
MINUTE_MS = 60_000


def _quorum(sensor: str, *minutes_after: float) -> Quarantine:
    return Quarantine("healthcare", sensor, "hospital-2", "hospital-2", evidence=[],
                      observed=tuple(int(RELEASED_MS + m * MINUTE_MS) for m in minutes_after))


def test_a_windowed_count_judged_within_its_window_after_the_release_is_the_releases_tail() -> None:
    release = Release("hospital-2/admissions divert (isolation 5)", RELEASED_MS)
    assert _judged_release(_quorum("hospital-2/arrivals_per_h", 18, 18, 19, 19), release, "healthcare", 3)
    assert _judged_release(_quorum("hospital-2/admissions_per_h", 100, 110, 119), release, "healthcare", 3)
    # past the window the count holds nothing from before the release: a spoof, taken
    past = PLUGIN.command_aftermath_s / 60 + 1
    assert not _judged_release(_quorum("hospital-2/arrivals_per_h", past, past, past), release, "healthcare", 3)


def test_only_windowed_counts_get_the_tail_and_nothing_before_the_release_does() -> None:
    release = Release("hospital-2/admissions divert (isolation 5)", RELEASED_MS)
    rows = RELEASE_ROWS * PLUGIN.report_period_s / 60
    # the diverting flag reads the release in its first rows only (`RELEASE_ROWS`)
    assert _judged_release(_quorum("hospital-2/diverting", rows, rows, rows), release, "healthcare", 3)
    assert not _judged_release(_quorum("hospital-2/diverting", 18, 18, 19), release, "healthcare", 3)
    # a count judged well before the release (a spoof begun under the hold) is not excused by it
    assert not _judged_release(_quorum("hospital-2/arrivals_per_h", -30, -30, -30), release, "healthcare", 3)
    # one voter inside the tail does not excuse the others' fresh verdicts
    past = PLUGIN.command_aftermath_s / 60 + 5
    assert not _judged_release(_quorum("hospital-2/arrivals_per_h", 10, past, past, past), release, "healthcare", 3)
