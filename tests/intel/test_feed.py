"""Every sector picks up what one sector's quorum published, applies it once and lifts it once."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.indicator_values import indicator_id
from intel.feed import Enforcer, IndicatorFeed
from intel.indicator import Indicator
from tests.chain.test_indicators import _publish, _verdicts, _withdraw
from tests.support import oracle

pytestmark = pytest.mark.chain


def test_published_indicators_are_applied_everywhere_once_and_lifted_on_withdrawal(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain  # its own: indicators other tests left in force would count in the propagation
    seen: dict[str, list[tuple[str, str]]] = {}

    def enforcer(name: str) -> Enforcer:
        log = seen.setdefault(name, [])
        return Enforcer(name, apply=lambda i: log.append(("apply", i.value)), lift=lambda i: log.append(("lift", i.value)))

    feed = IndicatorFeed(chain.client, chain.deployment, tmp_path / "feed.sqlite")
    for sector in ("electricity", "banking"):
        feed.add(enforcer(sector))
    try:
        cites = _verdicts(chain, "water", (1, 2, 3), "source-address", "10.55.0.1")
        _publish(chain, cites, "source-address", "10.55.0.1")
        _publish(chain, cites[:1], "source-address", "10.55.0.2")  # no quorum: never applied
        _publish(chain, cites, "source-address", "10.55.0.1", by=oracle(chain.settings, "water", 1))  # no role
        mine = indicator_id("source-address", "10.55.0.1")
        in_force = feed.poll()
        assert isinstance(in_force[mine], Indicator) and indicator_id("source-address", "10.55.0.2") not in in_force
        feed.poll()
        late = feed.add(enforcer("sewage"))  # an enforcer that joins later gets what is in force
        assert mine in late.applied
        _withdraw(chain, "source-address", "10.55.0.1")
        assert mine not in feed.poll()
        feed.poll()
    finally:
        feed.stop()
    for log in seen.values():
        assert [e for e in log if e[1] in ("10.55.0.1", "10.55.0.2")] == [("apply", "10.55.0.1"), ("lift", "10.55.0.1")]
    assert feed.stats.propagation_s and max(feed.stats.propagation_s) < 5.0
