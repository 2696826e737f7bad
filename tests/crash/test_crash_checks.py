"""Each ledger check of the crash campaign passes a whole history and fails a doctored one."""

from __future__ import annotations

import copy
import json
from typing import Any

from qeaims.crash_campaign import KINDS, kill_schedule
from qeaims.crash_checks import check_coverage, check_ledger, check_outboxes

ORACLE, CONTROLLER = "0xaaaa000000000000000000000000000000000001", "0xcccc000000000000000000000000000000000002"


def _root(seq: int, batch: int, start_min: int) -> dict[str, Any]:
    """A batch of two sensors over ten 30 s periods starting `start_min` minutes into the day."""
    first, last = start_min * 60 + 30, start_min * 60 + 30 + 9 * 30
    return {"oracle": ORACLE, "seq": seq, "kind": "telemetry-root", "sector": "banking",
            "payload": {"batch": batch, "count": 20, "first": _iso(first), "last": _iso(last)}}


def _iso(seconds: int) -> str:
    return f"2025-01-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"


def history() -> list[dict[str, Any]]:
    events = [_root(1, 1, 0), _root(2, 2, 5),
              {"oracle": ORACLE, "seq": 3, "kind": "fault", "sector": "banking",
               "payload": {"episode": "dc-primary|fault|1", "subject": "dc-primary"}},
              _root(4, 3, 10)]
    events += [{"oracle": CONTROLLER, "seq": n, "kind": kind, "sector": "control",
                "payload": {"proposal": 1, "step": step}}
               for n, (kind, step) in enumerate([("reroute-plan", "plan"), ("cascade-analysis", "cascade"),
                                                 ("isolation-applied", "applied"),
                                                 ("isolation-applied", "restored")], 1)]
    return events


def test_a_whole_history_passes() -> None:
    result = check_ledger(history())
    assert result.ok, result
    assert (result.events, result.recorders, result.telemetry_batches, result.telemetry_readings) == (8, 2, 3, 60)


def test_a_repeated_event_id_is_a_duplicate() -> None:
    events = history()
    events.insert(2, copy.deepcopy(events[1]))
    result = check_ledger(events)
    assert result.duplicate_ids == [f"{ORACLE[:10]}#2"] and not result.ok


def test_a_missing_seq_is_lost_and_a_late_one_out_of_order() -> None:
    events = [e for e in history() if not (e["oracle"] == ORACLE and e["seq"] == 3)]
    assert check_ledger(events).lost_ids == [f"{ORACLE[:10]}#3"]
    swapped = history()
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert check_ledger(swapped).out_of_order


def test_a_verdict_or_a_decision_recorded_twice_is_a_duplicate() -> None:
    events = history()
    again = copy.deepcopy(events[2])
    again["seq"] = 5
    result = check_ledger([*events, again])
    assert result.duplicate_verdicts and not result.duplicate_ids and not result.ok
    step = copy.deepcopy(events[6])
    step["seq"] = 5
    assert check_ledger([*events, step]).duplicate_decisions


def test_batches_not_numbered_1_to_n_show() -> None:
    renumbered = history()
    renumbered[3]["payload"]["batch"] = 2
    assert any("not 1..n" in p for p in check_ledger(renumbered).telemetry_problems)


def _seen(periods: range, sensors: int = 3, period_ms: int = 30_000) -> list[tuple[int, int]]:
    return [(s, p * period_ms) for p in periods for s in range(sensors)]


def test_a_store_with_every_sensor_once_a_period_passes_in_any_order() -> None:
    seen = _seen(range(1, 11))
    late = seen[12:15] + seen[:12] + seen[15:]  # a period stored late (a late envelope opened once)
    assert check_coverage("0xaaaa", len(late), late, 30_000) == []
    partial_last = seen[:-1]  # the twin stopped while its last period travelled
    assert check_coverage("0xaaaa", len(partial_last), partial_last, 30_000) == []


def test_a_lost_period_a_lost_reading_or_one_stored_twice_shows() -> None:
    seen = _seen(range(1, 11))
    without_period = [x for x in seen if x[1] != 5 * 30_000]
    assert any("1 report periods missing" in p for p in check_coverage("0xa", len(without_period),
                                                                       without_period, 30_000))
    without_reading = [x for x in seen if x != (1, 4 * 30_000)]
    assert any("1 readings lost" in p for p in check_coverage("0xa", len(without_reading), without_reading, 30_000))
    assert any("stored twice" in p for p in check_coverage("0xa", len(seen) + 1, seen, 30_000))


def test_an_outbox_ahead_of_the_ledger_has_lost_events() -> None:
    assert check_outboxes([(ORACLE, 4, 0)], {ORACLE: 4}) == []
    assert check_outboxes([(ORACLE, 5, 1)], {ORACLE: 4})
    assert check_outboxes([(ORACLE, 4, 2)], {ORACLE: 4})  # sent but never confirmed


def test_every_kind_is_killed_once_in_every_block_of_five_runs() -> None:
    order = kill_schedule(20, seed=7)
    assert all(sorted(order[i:i + 5]) == sorted(KINDS) for i in range(0, 20, 5))
    assert order == kill_schedule(20, seed=7) and order != kill_schedule(20, seed=8)
    assert kill_schedule(3, 1, ("chain", "oracle")) in (["chain", "oracle", "chain"], ["chain", "oracle", "oracle"],
                                                        ["oracle", "chain", "chain"], ["oracle", "chain", "oracle"])


def test_commands_sent_while_the_chain_was_down_are_found_in_the_twin_log() -> None:
    from qeaims.chain_down_campaign import commands_in_window

    def line(ts: str, ref: str) -> str:
        return json.dumps({"ts": f"2026-12-06T18:40:{ts}+00:00", "event": "twin-command", "ref": ref,
                           "sector": "banking", "what": "switch-1/route failover"})

    lines = [line("01.000", ""), line("05.000", "proposal:1"), "not json", line("20.000", "proposal:2")]
    start = 1796582405.0  # 18:40:05 UTC
    during, proposals = commands_in_window(lines, start, start + 10)
    assert proposals == [1, 2] and len(during) == 1 and "proposal:1" in during[0]
    assert commands_in_window(lines, start + 1, start + 10)[0] == []


def test_every_other_period_lost_shows_against_the_sectors_period() -> None:
    """The period comes from the sector (`REPORT_PERIOD_S`), not from the store: a store that lost every
    other period would look whole against a period read off its own readings (60 s)."""
    seen = _seen(range(0, 20, 2))
    assert any("9 report periods missing" in p for p in check_coverage("0xa", len(seen), seen, 30_000))
