"""What one hybrid channel costs in memory (no broker): handshake time, seal + open throughput, and
the latency sealing and opening add to each message.

Why measured apart from the broker: it isolates the cryptography's cost; `qeaims.bench_links`
measures the same through MQTT and subtracts a plaintext run.
"""

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
    """Seal+open `messages` payloads of `payload_bytes` (master → slave) on one hybrid session.

    Returns ``messages_per_s`` and ``mib_per_s`` (seal+open, one core), ``latency_p50_ms`` /
    ``latency_p95_ms`` / ``latency_mean_ms`` (seal+open per message), and ``handshake_initiate_ms`` /
    ``handshake_accept_ms`` / ``handshake_ms`` (ML-KEM-768, X25519, ML-DSA-65 + Ed25519, HKDF)."""
    if messages < 1 or payload_bytes < 0:
        raise ValueError("bench_channel needs at least one message and a non-negative payload size")
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
    clock = time.perf_counter
    begin = clock()
    for _ in range(messages):
        t0 = clock()
        receiver.open(sender.seal(payload, sender="bench-master"), sender="bench-master")
        each.append(clock() - t0)
    elapsed = clock() - begin
    return {"messages": messages, "payload_bytes": payload_bytes,
            "messages_per_s": round(messages / elapsed, 1),
            "mib_per_s": round(messages * payload_bytes / elapsed / 2**20, 1),
            "latency_p50_ms": round(_percentile(each, 0.5) * 1e3, 4),
            "latency_p95_ms": round(_percentile(each, 0.95) * 1e3, 4),
            "latency_mean_ms": round(sum(each) / len(each) * 1e3, 4),
            "handshake_initiate_ms": round((made - started) * 1e3, 3),
            "handshake_accept_ms": round((accepted - made) * 1e3, 3),
            "handshake_ms": round((accepted - started) * 1e3, 3)}
