"""The QBFT network model (`chain.qbft_model`) against what Besu's code and documentation say.

Unit tests: simulated time only (each scenario hour runs in about a tenth of a second)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import typer
from typer.testing import CliRunner

from chain.qbft_model import (
    LEDGER_BATCH_BYTES,
    LEDGER_BATCH_EVENTS,
    LEDGER_GAS_PER_EVENT,
    LOADS,
    NETWORKS,
    QbftConfig,
    max_faulty,
    quorum,
    saturation_tps,
    simulate,
)
from core.errors import ConfigError
from qeaims.commands import qbft_cmd

HOUR = 3600.0


def test_quorum_is_besu_ceil_two_thirds() -> None:
    assert [quorum(n) for n in (4, 5, 6, 7, 10, 13)] == [3, 4, 4, 5, 7, 9]
    assert [max_faulty(n) for n in (4, 7, 10)] == [1, 2, 3]


def test_all_up_blocks_come_every_block_period() -> None:
    for period in (1, 2, 5):
        result = simulate(QbftConfig(block_period_s=period, request_timeout_s=2 * period), seconds=HOUR,
                          isolations=20, seed=3)
        s = result.summary()
        assert result.round_changes == 0
        assert s["interval_mean_s"] == pytest.approx(period, rel=0.01)
        assert s["interval_p95_s"] < period + 0.1
        assert result.blocks == pytest.approx(HOUR / period, rel=0.01)


@pytest.mark.parametrize("validators", [4, 7, 10])
def test_one_down_costs_a_round_change_every_n_minus_1_heights(validators: int) -> None:
    """Besu's proposer rotation starts from the previous block's proposer, so after the round change
    the down validator's successor proposed, and the down one comes round again N-1 heights later."""
    period, timeout = 2, 4
    result = simulate(QbftConfig(validators=validators, down=1, block_period_s=period, request_timeout_s=timeout),
                      seconds=HOUR, isolations=20, seed=5)
    s = result.summary()
    assert result.round_changes / result.blocks == pytest.approx(1 / (validators - 1), rel=0.05)
    # each round change costs the round-0 timeout (plus the new proposer's round trip)
    assert s["interval_mean_s"] == pytest.approx(period + timeout / (validators - 1), rel=0.05)
    assert s["interval_p95_s"] >= period + timeout  # the p95 holds a timed-out round
    assert max(result.intervals) < period + timeout + 1.0


def test_f_plus_one_down_makes_no_block_and_no_isolation_is_final() -> None:
    for validators in (4, 7, 10):
        config = QbftConfig(validators=validators, down=max_faulty(validators) + 1)
        assert config.stalls
        result = simulate(config, seconds=600, isolations=10, seed=1)
        assert result.stalled and result.blocks == 0
        assert result.step_latencies == [] and result.quorum_latencies == []
    # f down still makes blocks
    assert simulate(QbftConfig(validators=7, down=2), seconds=600, isolations=5, seed=1).blocks > 0


def test_consensus_takes_longer_with_more_validators() -> None:
    """More validators: a larger quorum to wait for (the k-th of more arrivals) and more messages to
    check, on every block."""
    wan = NETWORKS["wan"]
    times = [simulate(QbftConfig(validators=n, network=wan), seconds=HOUR, isolations=50, seed=2)
             .summary()["consensus_mean_s"] for n in (4, 7, 10)]
    assert times[0] < times[1] < times[2]
    assert times[2] - times[0] > 0.01  # a 30 ms median hop: tens of milliseconds, not noise


def test_a_slow_validator_delays_the_blocks_it_proposes() -> None:
    result = simulate(QbftConfig(validators=4, slow=1, slow_delay_s=1.0), seconds=HOUR, isolations=20, seed=4)
    s = result.summary()
    assert result.round_changes == 0  # 1 s late is within the 4 s round timeout
    late = [i for i in result.intervals if i > 2.5]
    assert len(late) / result.blocks == pytest.approx(1 / 4, rel=0.1)  # its own turn, one height in four
    assert s["interval_p95_s"] >= 2.9
    # later than its round timeout it is as good as down as a proposer: a round change every N-1 heights
    timed_out = simulate(QbftConfig(validators=4, slow=1, slow_delay_s=5.0), seconds=HOUR, isolations=5, seed=4)
    assert timed_out.round_changes / timed_out.blocks == pytest.approx(1 / 3, rel=0.05)


def test_isolation_waits_for_blocks_and_each_controller_step_adds_one() -> None:
    one = simulate(QbftConfig(), seconds=HOUR, isolations=200, seed=6)
    three = simulate(QbftConfig(controller_steps=3), seconds=HOUR, isolations=200, seed=6)
    assert len(one.step_latencies) == 200
    s1, s3 = one.summary(), three.summary()
    # the votes wait for a block (up to a block period), the step for the next one
    assert 0.0 < s1["quorum_p50_s"] < 2.0 + 0.5
    assert s1["isolation_p50_s"] > s1["quorum_p50_s"] + 1.0
    assert s3["isolation_p50_s"] - s1["isolation_p50_s"] == pytest.approx(2 * 2.0, abs=0.6)


def test_same_seed_same_figures_other_seed_other_figures() -> None:
    config = QbftConfig(validators=7, down=1)
    a = simulate(config, seconds=1800, isolations=50, seed=11).summary()
    b = simulate(config, seconds=1800, isolations=50, seed=11).summary()
    c = simulate(config, seconds=1800, isolations=50, seed=12).summary()
    assert a == b
    assert a != c


def test_calibration_saturates_where_the_besu_wiki_measured() -> None:
    """4 validators, Caliper's simple-contract transaction offered faster than it can be taken: the
    Besu wiki's "QBFT Performance" page reports 750-1,200 tx/s sustained."""
    assert 750 <= saturation_tps(QbftConfig(validators=4, network=NETWORKS["lan"]), seconds=60) <= 1200


def test_big_blocks_over_a_slow_uplink_cost_more_with_more_validators() -> None:
    """The proposer uploads the whole block once per peer: ledger batches (~85 kB each) over a
    100 Mbit/s uplink take longer to reach 9 peers than 3."""
    def ledger(n: int, network: str) -> float:
        return saturation_tps(QbftConfig(validators=n, network=NETWORKS[network]),
                              tx_gas=LEDGER_BATCH_EVENTS * LEDGER_GAS_PER_EVENT, tx_bytes=LEDGER_BATCH_BYTES,
                              offered_tx_per_s=100.0, seconds=60.0)

    wan = [ledger(n, "wan") for n in (4, 10)]
    lan = [ledger(n, "lan") for n in (4, 10)]
    assert wan[1] < 0.8 * wan[0]
    assert lan[1] == pytest.approx(lan[0], rel=0.05)


def test_the_bench_ledger_rate_overloads_the_modelled_network() -> None:
    """The rate `qeaims bench ledger` reached on Anvil (~108 Mgas/s) is more than the calibrated
    network executes: the pool grows and isolations queue behind it (docs/qbft-model.md)."""
    bench = simulate(QbftConfig(load=LOADS["bench"]), seconds=600, isolations=10, seed=1)
    city = simulate(QbftConfig(load=LOADS["city"]), seconds=600, isolations=10, seed=1)
    assert bench.summary()["tx_per_s"] < 0.6 * LOADS["bench"].tx_per_s
    assert city.summary()["tx_per_s"] == pytest.approx(LOADS["city"].tx_per_s, rel=0.1)


def test_bad_configurations_are_refused() -> None:
    for bad in (QbftConfig(validators=5), QbftConfig()):
        changes: list[dict[str, int]] = [{"validators": 3}, {"down": bad.validators}, {"down": 2, "slow": 4},
                                         {"block_period_s": 0}, {"controller_steps": 0}]
        for change in changes:
            with pytest.raises(ValueError):
                replace(bad, **change)  # type: ignore[arg-type]


def test_command_rejects_bad_validator_counts() -> None:
    assert qbft_cmd.parse_validators("4, 7,10") == [4, 7, 10]
    for text in ("3", "4,x", "", "4,2"):
        with pytest.raises(ConfigError):
            qbft_cmd.parse_validators(text)


def test_command_prints_json_with_a_stall_reported_not_hidden() -> None:
    app = typer.Typer()
    app.command()(qbft_cmd.simulate)
    result = CliRunner().invoke(app, ["--validators", "4,7", "--down", "2", "--hours", "0.05",
                                      "--isolations", "3", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["scenarios"]
    assert [(r["validators"], r["stalled"]) for r in rows] == [(4, True), (7, False)]
    assert rows[0]["isolation_p95_s"] is None and rows[1]["isolation_p95_s"] > 0
