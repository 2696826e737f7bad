"""Which eth_getLogs errors mean "ask for fewer blocks" (`chain.logs.is_range_refusal`), by the wording
each node or endpoint uses (everything else must reach the caller unchanged), and the setting that
bounds every request (`QEAIMS_MAX_LOGS_RANGE`)."""

from __future__ import annotations

import pytest

from chain.logs import DEFAULT_MAX_LOGS_RANGE, is_range_refusal
from chain.rpc import RpcError
from core.config import load_settings
from core.errors import ConfigError


@pytest.mark.parametrize(("code", "message"), [
    (-32005, "Requested range exceeds maximum RPC range limit"),  # Besu, --rpc-max-logs-range
    (-32005, "query returned more than 10000 results"),  # Infura (Geth behind it)
    (-32000, "exceed maximum block range: 5000"),  # Geth forks, public endpoints
    (-32602, "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range"),  # Alchemy
    (-32005, "limit exceeded: block range too wide"),
])
def test_a_range_or_size_refusal_is_recognised(code: int, message: str) -> None:
    assert is_range_refusal(RpcError("eth_getLogs", code, message, None))


@pytest.mark.parametrize(("code", "message"), [
    (-32005, "daily request count exceeded, request rate limited"),  # asking twice as often would not help
    (-32602, "invalid argument 0: hex string has length 3, want 40 for common.Address"),
    (-32000, "header not found"),
    (-32603, "Internal error"),
])
def test_other_errors_are_not_taken_for_a_range_refusal(code: int, message: str) -> None:
    assert not is_range_refusal(RpcError("eth_getLogs", code, message, None))


def test_the_range_setting_defaults_to_besus_limit_and_is_overridden_like_the_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QEAIMS_MAX_LOGS_RANGE", raising=False)
    assert load_settings().max_logs_range == DEFAULT_MAX_LOGS_RANGE == 5_000
    monkeypatch.setenv("QEAIMS_MAX_LOGS_RANGE", "1000")
    assert load_settings().max_logs_range == 1_000
    monkeypatch.setenv("QEAIMS_MAX_LOGS_RANGE", "0")  # "no limit" is a node's setting, never a reader's
    with pytest.raises(ConfigError, match="max_logs_range"):
        load_settings()
