"""links.channel_bench: the figures the benchmark command prints exist and are sane."""

from __future__ import annotations

import pytest

from links.channel_bench import bench_channel


def test_bench_channel_reports_throughput_latency_and_handshake_time() -> None:
    result = bench_channel(messages=200, payload_bytes=256)
    assert result["messages"] == 200 and result["payload_bytes"] == 256
    assert result["messages_per_s"] > 0 and result["mib_per_s"] >= 0
    assert 0 < result["latency_p50_ms"] <= result["latency_p95_ms"]
    assert result["handshake_ms"] >= result["handshake_initiate_ms"] > 0
    with pytest.raises(ValueError):
        bench_channel(messages=0)
