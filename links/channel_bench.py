"""What one hybrid channel costs: handshake time, seal + open throughput and added latency per message."""

from __future__ import annotations

import os
import time

from links.channel import accept, initiate
from links.endpoint import EndpointKeys

__all__ = ["bench_channel"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_channel(messages: int = 20_000, payload_bytes: int = 2048) -> dict[str, float]:
    master, slave = EndpointKeys.generate("bench-master"), EndpointKeys.generate("bench-slave")
    qkd_key = os.urandom(32)
    started = time.perf_counter()
    handshake, sender = initiate("bench-master~bench-slave", 1, master, slave.public(), qkd_key=qkd_key,
                                 qkd_key_ids=("bench-key",))
    made = time.perf_counter()
    receiver = accept(handshake, slave, master.public(), qkd_key=qkd_key, expected_link_id=handshake.link_id)
    accepted = time.perf_counter()
    payload = os.urandom(payload_bytes)
    each: list[float] = []
    begin = time.perf_counter()
    for _ in range(messages):
        t0 = time.perf_counter()
        receiver.open(sender.seal(payload, sender="bench-master"), sender="bench-master")
        each.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - begin
    return {"messages": messages, "payload_bytes": payload_bytes,
            "messages_per_s": round(messages / elapsed, 1),
            "mib_per_s": round(messages * payload_bytes / elapsed / 2**20, 1),
            "seal_open_p50_us": round(_percentile(each, 0.5) * 1e6, 2),
            "seal_open_p95_us": round(_percentile(each, 0.95) * 1e6, 2),
            "handshake_initiate_ms": round((made - started) * 1e3, 3),
            "handshake_accept_ms": round((accepted - made) * 1e3, 3)}
