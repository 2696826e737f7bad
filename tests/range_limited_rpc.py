"""A JSON-RPC proxy that refuses wide ``eth_getLogs`` as Besu does, in front of a real chain.

Besu cannot be installed here, so this stands in for one thing it does: with ``--rpc-max-logs-range``
set, ``EthGetLogs`` resolves ``fromBlock``/``toBlock`` (``latest`` is the head, a missing bound is
``latest``) and, when ``to - from`` exceeds the limit, answers ``{"code": -32005, "message":
"Requested range exceeds maximum RPC range limit"}`` (``RpcErrorType.EXCEEDS_RPC_MAX_BLOCK_RANGE``).
Every other request, and every ``eth_getLogs`` within the limit, goes unchanged to the chain behind it
(the tests' Anvil) and its answer comes back unchanged: the proxy answers nothing itself but that refusal.
It records the spans it passed and refused so a test can show what a reader asked for.

With ``max_results`` it also refuses, as hosted endpoints in front of Geth do, an answer of more logs
than that: ``{"code": -32005, "message": "query returned more than N results"}`` (Infura's wording).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

__all__ = ["BESU_RANGE_ERROR", "RangeLimitedRpc", "too_many_results"]

BESU_RANGE_ERROR = {"code": -32005, "message": "Requested range exceeds maximum RPC range limit"}


def too_many_results(limit: int) -> dict[str, Any]:
    return {"code": -32005, "message": f"query returned more than {limit} results"}


@dataclass
class RangeLimitedRpc:
    upstream: str
    max_range: int  # Besu's --rpc-max-logs-range: refused when toBlock - fromBlock > max_range
    max_results: int | None = None  # an endpoint's cap on the logs in one answer
    passed: list[tuple[int, int]] = field(default_factory=list)  # (from, to) of eth_getLogs forwarded
    refused: list[tuple[int, int]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RangeLimitedRpc:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                answer = [proxy._answer(r) for r in body] if isinstance(body, list) else proxy._answer(body)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _forward(self, request: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = requests.post(self.upstream, json=request, timeout=30).json()
        return reply

    def _block(self, tag: Any) -> int:
        if tag in (None, "latest", "pending", "safe", "finalized"):
            return int(self._forward({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []})["result"],
                       16)
        return 0 if tag == "earliest" else int(str(tag), 16)

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("method") == "eth_getLogs" and request.get("params"):
            flt = request["params"][0]
            if "blockHash" not in flt:
                span = (self._block(flt.get("fromBlock")), self._block(flt.get("toBlock")))
                with self._lock:
                    (self.refused if span[1] - span[0] > self.max_range else self.passed).append(span)
                if span[1] - span[0] > self.max_range:
                    return {"jsonrpc": "2.0", "id": request.get("id"), "error": dict(BESU_RANGE_ERROR)}
            reply = self._forward(request)
            if self.max_results is not None and len(reply.get("result") or []) > self.max_results:
                return {"jsonrpc": "2.0", "id": request.get("id"), "error": too_many_results(self.max_results)}
            return reply
        return self._forward(request)
