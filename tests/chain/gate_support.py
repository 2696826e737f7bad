"""What the gate's tests share: a bare dev chain of their own (no consortium: the gate is all they test),
a client with no retries, and raw bytes sent to the gate with whatever comes back."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chain.node import start_anvil, stop_anvil
from chain.rpc import RpcClient
from core.config import Settings, load_settings
from tests.conftest import free_port


@contextmanager
def bare_chain(home: Path) -> Iterator[Settings]:
    settings = load_settings(home=home, rpc_port=free_port())
    start_anvil(settings)
    try:
        yield settings
    finally:
        stop_anvil(settings)


def gate_rpc(settings: Settings) -> RpcClient:
    return RpcClient(f"http://{settings.rpc_host}:{settings.rpc_port}", timeout_s=5.0, retries=0)


def raw_exchange(settings: Settings, raw: bytes, wait_s: float) -> bytes:
    """Send raw bytes to the gate and collect what comes back within `wait_s` (or until it closes)."""
    with socket.create_connection((settings.rpc_host, settings.rpc_port), timeout=3) as sock:
        sock.sendall(raw)
        deadline, out = time.monotonic() + wait_s, b""
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not data:
                break
            out += data
        return out
