"""The emergency department (ED): triage, treatment bays, and the clinical standards a wait is judged by.

Why the ED and not only beds: a hospital meets a surge at its front door first. Every emergency
patient is triaged, waits for a treatment space and a clinician, is treated, and then either goes
home or is admitted, and an admitted patient keeps the ED's space until a ward bed is free
(boarding, "access block"). A bed-only model has hundreds of beds at 80 % occupancy, so a ×3 surge
of a couple of admissions an hour finds a bed for everyone and nobody ever waits; a real ED with a
dozen staffed spaces, facing three times its attendances, builds a queue within the hour. Diverting
ambulances to a hospital with spare ED capacity is what shortens it.

The standards, and their source (one system, so that the mix and the targets agree): the
**Australasian Triage Scale** (ATS, Australasian College for Emergency Medicine), whose
time-to-treatment targets are the national benchmark the AIHW reports every year: resuscitation
"immediately" (measured as within 2 minutes), emergency within 10, urgent 30, semi-urgent 60,
non-urgent 120 minutes. These targets, not the UK's 4-hour standard, judge the wait to be seen,
because they are the clinical time within which each patient must be seen, and a surge breaks them
within the hour; the 4-hour standard (NHS England: admitted, transferred or discharged within 4
hours of arrival) cannot be broken by a surge until four hours after it starts, longer than the
storm day runs after its surge, and it measures the whole stay, treatment included. It is kept for
the one wait the triage targets do not cover: an admitted patient waiting in the ED for a bed. A
patient waiting past their target is service not delivered (`sectors.healthcare.plugin._service`).

Figures (AIHW, *Emergency department care 2017–18* and *Hospitals at a glance 2017–18*, Australian
public hospital EDs, 8.0 million presentations):

- triage mix: resuscitation 0.8 %, the three most urgent categories 51 %, semi-urgent 40 %, so
  non-urgent 9 % (8.6 % in 2021–22); the split of emergency and urgent (12 % / 38.2 % of the 50.2 %
  left) is ours;
- 31 % of presentations admitted to the hospital (:data:`ADMITTED_SHARE`), so ED attendances are the
  hospital's emergency admissions over 0.31;
- 25 % arrive by ambulance (:data:`AMBULANCE_SHARE`): only they can be diverted; walk-ins come to
  the hospital they chose whatever the controller does;
- in a mass-casualty incident most casualties reach hospital without EMS, self-presenting to the
  nearest hospital (Auf der Heide, "The importance of evidence-based disaster planning", Ann Emerg
  Med 2006; Sunrise Hospital, Las Vegas 2017, took most of the casualties by "victim self-triage"):
  :data:`MCI_AMBULANCE_SHARE` = 0.4 of an MCI's extra casualties come by ambulance (ours, "fewer
  than half").

Assumptions (ours, not measured): a patient keeps a treatment space for an Erlang-2 time of mean
:data:`TREAT_H` = 2 h after being seen (coefficient of variation 0.71: right-skewed as ED stays are,
without the exponential's tail of 10-hour treatments that starved a six-space ED of its spaces on
normal days; not a reported figure, chosen as a treatment of a couple of hours within stays the
4-hour standard expects to end within four); an ED is staffed so that on a normal day at most :data:`WAIT_PROBABILITY` = 10 % of
patients find every space taken (:func:`sized_bays`, the Erlang C queue used to staff EDs and call
centres; a fixed utilisation instead, 75 %, left a six-space ED queueing its non-urgent patients for
hours on normal days, as a small queue pools worse than a large one. 10 % was chosen on normal days
only: with it the development city's EDs (23, 17 and 8 spaces) see 99.0 %, 99.9 % and 94.4 % of
patients within their triage target (seeds 0-3, 48 h each, counted by `Hospital.seen` and
`seen_late`), kinder than real EDs are (72-75 % seen on time in Australia, AIHW), so no baseline is made
worse by a starved ED); a resuscitation patient is always taken at once (a resuscitation room and its
team are called whatever else is waiting), the others by triage category, then arrival; the triage
mix and admission share are the same for an MCI's casualties as for ordinary attendances; a
diverted ambulance's longer drive is not counted as waiting (the targets run from arrival at an ED,
as the AIHW measures them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ADMITTED_SHARE", "AMBULANCE_SHARE", "BED_WAIT_STANDARD_S", "MCI_AMBULANCE_SHARE", "TREAT_H",
           "TRIAGE", "WAIT_PROBABILITY", "TriageCategory", "sized_bays", "treatment_left_s", "treatment_s"]


@dataclass(frozen=True)
class TriageCategory:
    """One ATS category: its share of presentations and the time within which it must be seen."""

    code: int
    name: str
    share: float
    target_s: float


TRIAGE: tuple[TriageCategory, ...] = (
    TriageCategory(1, "resuscitation", 0.008, 120.0),
    TriageCategory(2, "emergency", 0.120, 600.0),
    TriageCategory(3, "urgent", 0.382, 1800.0),
    TriageCategory(4, "semi-urgent", 0.400, 3600.0),
    TriageCategory(5, "non-urgent", 0.090, 7200.0),
)
TARGET_S = {c.code: c.target_s for c in TRIAGE}
SHARES = tuple(c.share for c in TRIAGE)
ADMITTED_SHARE = 0.31
AMBULANCE_SHARE = 0.25
MCI_AMBULANCE_SHARE = 0.4
TREAT_H = 2.0
WAIT_PROBABILITY = 0.1
BED_WAIT_STANDARD_S = 4 * 3600.0
"""The 4-hour standard, applied to an admitted patient still in the ED waiting for a bed."""


def erlang_c(spaces: int, load: float) -> float:
    """The probability that an arrival waits for one of ``spaces`` servers offered ``load`` erlangs
    (Erlang C, the M/M/c queue; 1 when the load is not below the spaces)."""
    if load >= spaces:
        return 1.0
    term, total = 1.0, 1.0  # a^k / k!, summed from k = 0
    for k in range(1, spaces):
        term *= load / k
        total += term
    top = term * load / spaces * spaces / (spaces - load)
    return top / (total + top)


def sized_bays(attendances_per_h: float) -> int:
    """Staffed treatment spaces for ``attendances_per_h``: the fewest with which at most
    :data:`WAIT_PROBABILITY` of arrivals find every space taken (Erlang C on the treatment load)."""
    load = attendances_per_h * TREAT_H
    spaces = max(1, math.floor(load) + 1)
    while erlang_c(spaces, load) > WAIT_PROBABILITY:
        spaces += 1
    return spaces


def treatment_s(rng: np.random.Generator) -> float:
    """A treatment time: Erlang-2 of mean :data:`TREAT_H` (two exponential phases of TREAT_H / 2)."""
    return float(rng.gamma(2.0, TREAT_H / 2 * 3600.0))


def treatment_left_s(rng: np.random.Generator) -> float:
    """The treatment left of a patient met in a space at a random moment (the twin's start).

    A patient met at random is in either phase with probability 1/2: in the first, both phases are
    still ahead; in the second, one (memoryless within a phase). So the ED starts in steady state.
    """
    return float(rng.gamma(2.0 if rng.random() < 0.5 else 1.0, TREAT_H / 2 * 3600.0))
