"""Keys per second through the KME: enc_keys at the master, dec_keys at the slave, over HTTPS.

What it measures is the KME's service (two TLS keep-alive clients, JSON, the store's lock and state
file), not the QKD pair: the pool is refilled by the pair in the background, and the time the
bench waits for it is counted apart (``waits_for_qkd``), so a slow link does not pass for a slow KME.
"""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from links.kme.client import KmeClient
from links.kme.server import KmeServer
from links.pki import DevPki
from links.plan import LinkPlan, LinkSpec

__all__ = ["kme_throughput"]

FIRST_KEYS_TIMEOUT_S = 30.0


def _loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def kme_throughput(seconds: float = 5.0, *, port: int | None = None, keys_per_request: int = 1,
                   size: int = 256, distance_km: float = 25.0) -> dict[str, Any]:
    """One link of `distance_km`: the master asks for keys and the slave fetches them, for `seconds`.

    A KME of its own in a temporary directory (its own PKI and state file), on `port` or a free one.
    """
    port = _loopback_port() if port is None else port
    with tempfile.TemporaryDirectory(prefix="qeaims-kme-bench-") as tmp:
        plan = LinkPlan(links=(LinkSpec(master="bench-master", slave="bench-slave", distance_km=distance_km),),
                        kme_url=f"https://127.0.0.1:{port}")
        link_id = plan.links[0].link_id
        pki = DevPki(Path(tmp) / "pki")
        with KmeServer(plan, pki, port=port, state_path=Path(tmp) / "kme-state.json") as server, \
                KmeClient(plan.kme_url, "bench-master", pki) as master, \
                KmeClient(plan.kme_url, "bench-slave", pki) as slave:
            need = keys_per_request * size // 8
            deadline = time.monotonic() + FIRST_KEYS_TIMEOUT_S
            first = max(need, server.supply.low_water_bytes // 2)
            while server.store.available_bytes(link_id) < first:  # the pair's first blocks
                if time.monotonic() > deadline:
                    raise ConfigError(f"the KME's QKD pair made no key in {FIRST_KEYS_TIMEOUT_S:.0f} s "
                                      f"at {distance_km} km")
                time.sleep(0.05)
            delivered, waited = 0, 0
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                if server.store.available_bytes(link_id) < need:
                    waited += 1
                    time.sleep(0.01)
                    continue
                keys = master.enc_keys("bench-slave", keys_per_request, size)
                if slave.dec_keys("bench-master", [k.key_ID for k in keys]) != keys:
                    raise ConfigError("the KME gave the slave other keys than the master's")
                delivered += len(keys)
            elapsed = time.perf_counter() - started
            blocks = server.supply.state_of(link_id)["blocks"]
    return {"keys": delivered, "key_bits": size, "keys_per_request": keys_per_request,
            "keys_per_s": round(delivered / elapsed, 1), "qkd_blocks": blocks, "waits_for_qkd": waited,
            "seconds": round(elapsed, 2), "distance_km": distance_km}
