"""A small JSON-RPC client speaking only standard `eth_*` methods, with retries on transport errors.

Kept apart from web3's provider stack so that retries, timeouts and error translation are ours:
a node that is down becomes `ChainNotRunning` with a plain sentence, and a revert keeps its raw
data so `chain.client` can decode the contract's custom error.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import requests

from core.errors import ChainError, ChainNotRunning

__all__ = ["RpcClient", "RpcError"]


class RpcError(ChainError):
    """The node answered with a JSON-RPC error (e.g. a revert during estimateGas)."""

    def __init__(self, method: str, code: int, message: str, data: bytes | None) -> None:
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data
        super().__init__(f"{method} failed: {message}")


def _revert_data(error: dict[str, Any]) -> bytes | None:
    data = error.get("data")
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


class RpcClient:
    def __init__(self, url: str, *, timeout_s: float = 30.0, retries: int = 4) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self._ids = itertools.count(1)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        """One request; transport failures are retried with backoff, RPC errors are not."""
        body: Any = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []}
        delay = 0.1
        for attempt in range(self.retries + 1):
            try:
                response = self._session().post(self.url, json=body, timeout=self.timeout_s)
                reply = response.json()
                break
            except (requests.ConnectionError, requests.Timeout, ValueError) as exc:
                if attempt == self.retries:
                    raise ChainNotRunning(
                        f"no chain answers at {self.url}: start it with `qeaims chain up`"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        if "error" in reply:
            error = reply["error"]
            raise RpcError(method, int(error.get("code", 0)), str(error.get("message", "")), _revert_data(error))
        return reply["result"]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several requests in one HTTP round trip (used by the indexer and receipt polling)."""
        if not calls:
            return []
        body: Any = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        try:
            response = self._session().post(self.url, json=body, timeout=self.timeout_s)
            replies = {r["id"]: r for r in response.json()}
        except (requests.ConnectionError, requests.Timeout, ValueError) as exc:
            raise ChainNotRunning(f"no chain answers at {self.url}: start it with `qeaims chain up`") from exc
        results = []
        for i, (method, _) in enumerate(calls):
            reply = replies[i]
            if "error" in reply:
                error = reply["error"]
                raise RpcError(method, int(error.get("code", 0)), str(error.get("message", "")),
                               _revert_data(error))
            results.append(reply["result"])
        return results
