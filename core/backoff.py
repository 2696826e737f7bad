"""How long a loop waits after a chain error before it tries again.

The steps grow while the chain stays away or keeps refusing, so a long outage is not hammered. They
start over when the chain answers again having lost what was sent (`TransactionLost`: a chain restarted
from its journal without the blocks of its last moments): sending again is then the fix, and the
back-off the outage built up must not hold up the recovery (found by the crash campaign: after a chain
kill the oracles waited out a 5 s step the chain was already back for).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import TransactionLost


def next_backoff(failures: int, error: BaseException, steps: Sequence[float]) -> tuple[int, float]:
    """The failures in a row after `error` (given those before it) and the seconds to wait."""
    failures = 1 if isinstance(error, TransactionLost) else failures + 1
    return failures, steps[min(failures, len(steps)) - 1]
