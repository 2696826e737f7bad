"""`qeaims bench links`: what the secure links cost.

Three figures, each measured for real:

- ``channel``: one hybrid session's AES-256-GCM seal + open, messages/s and the added latency per
  message (`links.channel_bench.bench_channel`), and the handshake's cost (ML-KEM-768 encapsulation,
  X25519, ML-DSA-65 + Ed25519 signatures and their checks);
- ``mqtt``: the same messages end to end through the embedded broker, publisher to reader, once in
  plaintext and once through `bus.secure` (a KME over HTTPS keying the link), so the latency the
  links add to the city's path is the difference of the two, measured the same way;
- ``kme``: keys/s through the ETSI GS QKD 014 interface (enc_keys at the master, dec_keys at the
  slave, over HTTPS with client certificates), from keys the simulated QKD pair made.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bus.client import NamedClient
from bus.mqtt import EmbeddedBroker
from bus.secure import SecureLinks, open_links
from links.files import LinkFiles
from links.kme.server import KmeServer
from links.pki import DevPki
from links.plan import LinkPlan, LinkSpec
from links.site import prepare
from qeaims._heal_watch import free_port

__all__ = ["run_links_bench"]

TOPIC = "qeaims/water/_batch/bench"


class _Reader(NamedClient):
    def __init__(self, port: int, links: SecureLinks | None, on: Callable[[str, bytes], None]) -> None:
        super().__init__("bench-reader", host="127.0.0.1", port=port, settle_s=0.3, links=links)
        self._listen([(TOPIC, 1)], on)


class _Writer(NamedClient):
    def __init__(self, port: int, links: SecureLinks | None) -> None:
        super().__init__("bench-writer", host="127.0.0.1", port=port, settle_s=0.3, links=links)

    def send(self, payload: bytes) -> None:
        info = self._send(TOPIC, payload, qos=1)
        if info is not None:
            info.wait_for_publish(10)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _through_broker(port: int, messages: int, payload_bytes: int, writer_links: SecureLinks | None,
                    reader_links: SecureLinks | None) -> dict[str, float]:
    """Publish `messages` one after another, each stamped; the reader's receive time gives latency."""
    latencies: list[float] = []
    got = threading.Event()

    def on(_topic: str, payload: bytes) -> None:
        latencies.append(time.perf_counter() - float(payload[:24].decode()))
        if len(latencies) >= messages:
            got.set()

    pad = b"x" * max(0, payload_bytes - 24)
    with _Reader(port, reader_links, on), _Writer(port, writer_links) as writer:
        time.sleep(0.5)  # the reader's session (through links: the handshake) is in place
        started = time.perf_counter()
        for _ in range(messages):
            writer.send(f"{time.perf_counter():<24.9f}".encode() + pad)
        got.wait(60)
        elapsed = time.perf_counter() - started
    return {"messages": len(latencies), "messages_per_s": round(len(latencies) / elapsed, 1),
            "latency_p50_ms": round(_percentile(latencies, 0.5) * 1e3, 3),
            "latency_p95_ms": round(_percentile(latencies, 0.95) * 1e3, 3),
            "latency_mean_ms": round(statistics.fmean(latencies) * 1e3, 3) if latencies else float("nan")}


def run_links_bench(*, messages: int = 2000, payload_bytes: int = 2048, kme_seconds: float = 5.0,
                    say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    from links.channel_bench import bench_channel
    from links.kme.bench import kme_throughput

    say("sealing and opening in memory")
    channel = bench_channel(messages=max(messages * 5, 10_000), payload_bytes=payload_bytes)
    say("keys through the KME over HTTPS")
    kme = kme_throughput(kme_seconds, port=free_port())
    with tempfile.TemporaryDirectory(prefix="qeaims-bench-links-") as tmp:
        home = Path(tmp)
        files = LinkFiles.of(home)
        kme_port, mqtt_port = free_port(), free_port()
        plan = LinkPlan(links=(LinkSpec(master="bench-writer", slave="bench-reader", distance_km=25.0,
                                        master_to_slave=(TOPIC,)),), kme_url=f"https://127.0.0.1:{kme_port}")
        prepare(files, plan)
        with KmeServer(plan, DevPki(files.pki), port=kme_port, state_path=files.kme_state), \
                EmbeddedBroker(port=mqtt_port):
            say("plaintext through the broker")
            plain = _through_broker(mqtt_port, messages, payload_bytes, None, None)
            writer, reader = open_links(home, "bench-writer"), open_links(home, "bench-reader")
            assert writer is not None and reader is not None
            try:
                time.sleep(1.0)  # the KME's first QKD blocks: the session is hybrid, not a fallback
                say("hybrid links through the broker")
                secure = _through_broker(mqtt_port, messages, payload_bytes, writer, reader)
                mode = writer.status()[plan.links[0].link_id]["mode"]
            finally:
                writer.close()
                reader.close()
    return {
        "channel": channel, "kme": kme,
        "mqtt": {"plaintext": plain, "hybrid": secure, "mode": mode, "payload_bytes": payload_bytes,
                 "added_latency_p50_ms": round(secure["latency_p50_ms"] - plain["latency_p50_ms"], 3),
                 "added_latency_p95_ms": round(secure["latency_p95_ms"] - plain["latency_p95_ms"], 3)},
    }
