"""One JSON-RPC call to a validator's operator endpoint: ``python -m chain.besu.operator_rpc METHOD [PARAMS]``.

A generated validator serves QBFT, PERM and ADMIN only on a WebSocket bound to its own loopback
(`chain.besu.nodefiles`), so no other container and no host on the LAN can vote validators in or out or
widen the allowlists. The operator reaches it from inside the validator's network namespace, e.g.
``docker run --rm --network container:<validator> --entrypoint python qeaims:0.1.0 -m
chain.besu.operator_rpc qbft_getPendingVotes``: the QEAIMS image already has Python and ``websockets``
(a dependency of web3), while Besu's image has neither curl nor any WebSocket client.

Prints the call's ``result`` as JSON on stdout; a JSON-RPC error or an unreachable endpoint is one
``error:`` line on stderr and exit code 1; bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from chain.besu.nodefiles import OPERATOR_WS_PORT

__all__ = ["DEFAULT_URL", "call", "main"]

DEFAULT_URL = f"ws://127.0.0.1:{OPERATOR_WS_PORT}"
_TIMEOUT_S = 10.0


class OperatorRpcError(Exception):
    """The node answered with a JSON-RPC error, or could not be reached."""


def call(url: str, method: str, params: list[object]) -> object:
    """Send one request and return its ``result``."""
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    try:
        with connect(url, open_timeout=_TIMEOUT_S, close_timeout=_TIMEOUT_S) as ws:
            ws.send(request)
            reply = json.loads(ws.recv(timeout=_TIMEOUT_S))
    except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
        raise OperatorRpcError(f"{url}: {exc}") from exc
    if not isinstance(reply, dict):
        raise OperatorRpcError(f"{url}: not a JSON-RPC reply: {reply!r}")
    if "error" in reply:
        error = reply["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise OperatorRpcError(f"{method}: {message}")
    return reply.get("result")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chain.besu.operator_rpc",
                                     description="Call a validator's loopback-only operator JSON-RPC endpoint.")
    parser.add_argument("method", help="e.g. qbft_proposeValidatorVote, perm_reloadPermissionsFromFile")
    parser.add_argument("params", nargs="?", default="[]", help="the params as a JSON array (default: [])")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the endpoint (default: {DEFAULT_URL})")
    args = parser.parse_args(argv)
    try:
        params = json.loads(args.params)
    except ValueError:
        params = None
    if not isinstance(params, list):
        print(f"error: params must be a JSON array, e.g. '[\"0xabc…\", true]', not {args.params!r}", file=sys.stderr)
        return 2
    try:
        result = call(args.url, args.method, params)
    except OperatorRpcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
